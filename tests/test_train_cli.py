"""The training command line: `train STAGE --config FILE overrides [--resume]` in time-limited
chunks (the way a long run is done in the background), `plot`, and `bench train`."""

import json

from conftest import tiny_config

from core.cli import main
from core.config import ZOO
from core.train.checkpoint import latest_checkpoint
from core.train.metrics import read_metrics
from tests.train_fixtures import run_overrides, save_tiny_model, write_token_shards


def test_time_limited_chunks_resume_to_the_end_then_plot(tmp_path, capsys):
    model = save_tiny_model(tmp_path / "model")
    data = write_token_shards(tmp_path / "tokens", model)
    config = tmp_path / "dynamics.yaml"
    config.write_text("stage: dynamics\ntrain:\n  steps: 3\n  time_limit_minutes: 0.00001\n")
    # the time limit stops the first chunk between two log rows (log.every=2): it must log its step anyway
    overrides = run_overrides(tmp_path, tmp_path / "model", data, "run")
    overrides = [o for o in overrides if not o.startswith(("train.steps", "log.every"))] + ["log.every=2"]
    assert main(["train", "dynamics", "--config", str(config), *overrides, "--resume"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (first["stopped"], first["step"]) == ("time_limit", 1)
    assert latest_checkpoint(tmp_path / "run").name == "step-0000001" and (tmp_path / "run" / "model").is_dir()
    assert (
        main(["train", "dynamics", "--config", str(config), *overrides, "--resume", "train.time_limit_minutes=0"]) == 0
    )
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (second["stopped"], second["step"]) == ("done", 3)
    assert [m["step"] for m in read_metrics(tmp_path / "run" / "metrics.jsonl")] == [1, 2, 3]
    assert main(["plot", str(tmp_path / "run"), "--out", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["train", "dynamics", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["train", "dynamics", "train.steps=3", "--bogus"]) == 2
    assert "unrecognized" in capsys.readouterr().err
    assert main(["plot", str(tmp_path)]) == 2


def test_bench_train_reports_frames_per_second_and_memory(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(ZOO, "test-tiny", tiny_config())  # a tokens-family variant that times in a second
    assert main(["bench", "train", "--stage", "dynamics", "--variant", "nano"]) == 2  # a tokens stage
    assert "nano is the frames family: its stages are frames" in capsys.readouterr().err
    assert main(["bench", "train", "--stage", "frames", "--variant", "test-tiny"]) == 2
    assert "test-tiny is the tokens family: its stages are tokenizer, tokens, dynamics" in capsys.readouterr().err
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "train",
                "--stage",
                "dynamics",
                "--variant",
                "test-tiny",
                "--batch-size",
                "1",
                "--clip-len",
                "2",
                "--steps",
                "1",
                "--threads",
                "2",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    row = json.loads(out.read_text())
    assert row["stage"] == "dynamics" and row["frames_per_second"] > 0 and row["peak_memory_mb"] > 100
    # the default: the variant's own family's stage; nano trains every part in the frames stage
    assert main(["bench", "train", "--batch-size", "1", "--steps", "1", "--threads", "2", "--json", str(out)]) == 0
    row = json.loads(out.read_text())
    assert (row["stage"], row["variant"], row["clip_len"]) == ("frames", "nano", 6) and row["frames_per_second"] > 0
