import json

import pytest
import yaml
from conftest import tiny_config
from huggingface_hub import ModelCard
from safetensors import safe_open

from core.cli import main
from core.config import ConfigError, zoo_config
from core.ship import ShipConfig, bar_rows, run_budget, ship
from core.world_model import WorldModel
from core.zoo import weights_available

RESULTS = {
    "reconstruction": {"tokenizer_psnr": 31.2, "tokenizer_ssim": 0.93},
    "prediction": {"teacher_forced_psnr": 27.5, "copy_previous_psnr": 24.0},
    "action_accuracy": "not computed (no IDM)",
    "physics": {"generated": {"score": 0.85}},
    "drift_free_horizon": {"seconds_median": 12.0},
}


def make_run(folder, stage="dynamics", steps=40, fps=4.0):
    folder.mkdir()
    config = {
        "stage": stage,
        "data": {"clip_len": 8},
        "train": {"batch_size": 2, "accumulation": 1},
        "log": {"every": 20},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    lines = [
        {"step": s, "split": "train", "loss": 1.0 / s, "frames_per_second": fps, "lr": 1e-3}
        for s in range(20, steps + 1, 20)
    ]
    lines.append({"step": steps, "split": "val", "loss": 0.5})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


@pytest.fixture
def nano_model(tmp_path):
    folder = tmp_path / "trained"
    WorldModel(zoo_config("nano")).save_pretrained(folder)
    return folder


@pytest.fixture
def report(tmp_path):
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({"info": {"game": "platformer"}, "metrics": RESULTS}))
    (folder / "real_vs_generated.gif").write_bytes(b"GIF89a")
    return folder


def test_budget_counts_frames_and_optimiser_time(tmp_path):
    budget = run_budget(make_run(tmp_path / "run"))
    # 40 steps x 2 clips x 8 frames; two logging windows of 20 steps x 16 frames at 4 frames/s
    assert budget == {
        "stage": "dynamics",
        "run": str(tmp_path / "run"),
        "steps": 40,
        "frames_seen": 640,
        "train_seconds": 160,
    }


def test_bars_pass_fail_and_say_what_was_not_measured():
    rows = {row["metric"]: row for row in bar_rows(RESULTS)}
    assert rows["tokenizer PSNR (dB)"]["status"] == "pass"
    assert rows["teacher-forced next-frame PSNR (dB)"]["status"] == "fail"
    assert rows["repeat-last-frame PSNR (dB), the baseline"]["status"] == "-"
    gain = rows["teacher-forced PSNR over repeating the last frame (dB)"]  # 27.5 - 24.0: the +1 dB clause holds
    assert (gain["value"], gain["status"]) == (3.5, "pass")
    copying = {**RESULTS, "prediction": {"teacher_forced_psnr": 31.0, "copy_previous_psnr": 30.5}}
    rows = {row["metric"]: row for row in bar_rows(copying)}  # >= 30, but no better than repeating the frame
    assert rows["teacher-forced next-frame PSNR (dB)"]["status"] == "pass"
    assert rows["teacher-forced PSNR over repeating the last frame (dB)"]["status"] == "fail"
    assert rows["action accuracy (visible effect)"]["value"] == "not computed (no IDM)"
    assert rows["drift-free horizon (s)"]["status"] == "fail"


def test_ship_writes_a_playable_zoo_folder_with_a_valid_card(tmp_path, nano_model, report, monkeypatch):
    monkeypatch.setenv("POCKETWORLD_ZOO", str(tmp_path / "zoo"))
    bench = tmp_path / "bench.json"
    bench.write_text(
        json.dumps({"threads": 2, "precision": "fp32", "fps": 12.5, "latency_ms_p50": 80.0, "latency_ms_p95": 90.0})
    )
    notes = tmp_path / "notes.md"
    notes.write_text("## Limitations\n\nThe player drifts.\n")
    code = main(
        [
            "ship",
            str(nano_model),
            "--report",
            str(report),
            "--runs",
            str(make_run(tmp_path / "run")),
            "--bench",
            str(bench),
            "--evaluate-command",
            "pocketworld evaluate nano --data shards/x",
            "--notes",
            str(notes),
        ]
    )
    assert code == 0
    out = tmp_path / "zoo" / "nano"
    assert weights_available("nano")
    with safe_open(out / "model.safetensors", "pt") as f:
        assert {str(f.get_tensor(name).dtype) for name in f.keys()} == {"torch.float16"}
    loaded = WorldModel.from_pretrained(out)
    assert loaded.config.name == "nano"
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "pocketworld"
    assert "| teacher-forced next-frame PSNR (dB) | >= 30 | 27.5 | fail |" in card.text
    assert "pocketworld evaluate nano --data shards/x" in card.text
    assert "pocketworld finetune --base nano`" in card.text  # a name finetune takes
    assert "| 2 | fp32 | 12.5 | 80.0 | 90.0 |" in card.text
    assert "a U-Net dynamics that denoises the next small frame" in card.text  # nano is the frames family
    assert "| dynamics | 40 | 640 | 3 |" in card.text
    assert (out / "eval" / "real_vs_generated.gif").is_file() and (out / "curves-dynamics-run.png").is_file()
    assert json.loads((out / "eval" / "results.json").read_text())["metrics"] == RESULTS
    assert json.loads((out / "eval" / "bench_play.json").read_text())["fps"] == 12.5
    assert "![eval/real_vs_generated.gif](eval/real_vs_generated.gif)" in card.text
    assert card.text.rstrip().endswith("## Limitations\n\nThe player drifts.")


def test_ship_refuses_another_architecture_and_keeps_the_old_folder(tmp_path, nano_model, report):
    out = tmp_path / "zoo" / "nano"
    ship(ShipConfig(model=str(nano_model), out=str(out)))
    before = (out / "model.safetensors").read_bytes()
    other = tmp_path / "other"
    WorldModel(tiny_config()).save_pretrained(other)
    with pytest.raises(ConfigError, match="is not a nano model: its decoder, dynamics, family, tokenizer differ"):
        ship(ShipConfig(model=str(other), out=str(out)))
    with pytest.raises(FileNotFoundError, match="pocketworld evaluate --report"):
        ship(ShipConfig(model=str(nano_model), out=str(out), report=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="--notes .*no such file"):
        ship(ShipConfig(model=str(nano_model), out=str(out), notes=str(tmp_path / "missing.md")))
    assert (out / "model.safetensors").read_bytes() == before


def test_one_report_per_game_gives_a_bars_column_each(tmp_path, nano_model, report):
    reports = []
    for game, accuracy in (("maze", 0.95), ("shooter", 0.5)):
        folder = tmp_path / f"report-{game}"
        folder.mkdir()
        metrics = {**RESULTS, "action_accuracy": {"generated": {"accuracy": accuracy}}}
        (folder / "results.json").write_text(json.dumps({"info": {"game": game}, "metrics": metrics}))
        (folder / "real_vs_generated.gif").write_bytes(b"GIF89a")
        reports.append(str(folder))
    out = tmp_path / "zoo" / "nano"
    commands = ["pocketworld evaluate nano --data shards/maze", "pocketworld evaluate nano --data shards/shooter"]
    ship(ShipConfig(model=str(nano_model), out=str(out), report=reports, evaluate_command=commands))
    card = ModelCard.load(out / "README.md")
    assert "| metric | bar | maze | shooter |" in card.text
    assert "| action accuracy (visible effect) | >= 90% | 0.95 pass | 0.5 fail |" in card.text
    assert "| action accuracy (visible effect) (shooter) | 0.5 |" in card.text  # the Measured table names the game
    assert all(command in card.text for command in commands)
    assert "![eval/shooter/real_vs_generated.gif](eval/shooter/real_vs_generated.gif)" in card.text
    assert json.loads((out / "eval" / "maze" / "results.json").read_text())["info"]["game"] == "maze"
    with pytest.raises(ValueError, match="two reports of the same game"):
        ship(ShipConfig(model=str(nano_model), out=str(out), report=[reports[0], reports[0]]))


def test_a_reship_keeps_the_training_history_of_the_folder_it_replaces(tmp_path, nano_model):
    out = tmp_path / "zoo" / "nano"
    ship(ShipConfig(model=str(nano_model), out=str(out), runs=[str(make_run(tmp_path / "first"))]))
    kept = json.loads((out / "training.json").read_text())["runs"]
    assert [(r["steps"], r["curves"]) for r in kept] == [(40, "curves-dynamics-first.png")]
    # the run folder is gone (a fresh machine); the same folder is shipped again with one run more
    (tmp_path / "first" / "metrics.jsonl").unlink()
    ship(
        ShipConfig(
            model=str(nano_model), out=str(out), history=str(out), runs=[str(make_run(tmp_path / "more", steps=60))]
        )
    )
    card = (out / "README.md").read_text()
    assert "| dynamics | 40 | 640 | 3 |" in card and "| dynamics | 60 | 960 | 4 |" in card
    assert (out / "curves-dynamics-first.png").is_file() and (out / "curves-dynamics-more.png").is_file()
    assert len(json.loads((out / "training.json").read_text())["runs"]) == 2
    with pytest.raises(ConfigError, match="has no training.json"):
        ship(ShipConfig(model=str(nano_model), out=str(out), history=str(tmp_path)))
    (out / "curves-dynamics-first.png").unlink()
    with pytest.raises(ConfigError, match="curves-dynamics-first.png, which is not in"):
        ship(ShipConfig(model=str(nano_model), out=str(out), history=str(out)))
    assert (out / "curves-dynamics-more.png").is_file()  # a refused ship leaves the folder as it was
