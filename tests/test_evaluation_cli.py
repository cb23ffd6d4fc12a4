"""`pocketworld evaluate` and `pocketworld idm train` end to end on a tiny model, and their errors."""

import json

import numpy as np
import pytest
import torch
from conftest import tiny_config
from evaluation_play import play_platformer

from core.cli import main
from core.config import WorldModelConfig
from core.data.shards import Sample, ShardWriter
from core.evaluation.episodes import Episode
from core.evaluation.loading import check_compatible
from core.world_model import WorldModel
from core.zoo import load as load_model


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    writer = ShardWriter(root / "shards")
    for seed, split in ((11, "test"), (63, "test"), (3, "train")):
        frames, actions, state, layout = play_platformer(seed, 40)
        meta = {
            "game": "platformer",
            "seed": seed,
            "agent": "scripted",
            "split": split,
            "start_frame": 0,
            "state_layout": layout,
            "tileset": None,
        }
        writer.write(Sample(frames, actions, state, meta))
    writer.close()
    torch.manual_seed(0)
    WorldModel(tiny_config()).save_pretrained(root / "model")
    return root


def _evaluate(root, *extra):
    return main(
        [
            "evaluate",
            str(root / "model"),
            "--data",
            str(root / "shards"),
            "--episodes",
            "2",
            "--horizon",
            "1",
            "--recon-frames",
            "4",
            "--keep-frames",
            "20",
            "--ssim-every",
            "5",
            "--no-progress",
            *extra,
        ]
    )


def test_idm_train_then_evaluate_writes_the_report(workspace, capsys):
    assert (
        main(
            [
                "idm",
                "train",
                "--data",
                str(workspace / "shards"),
                "--out",
                str(workspace / "idm"),
                "--steps",
                "3",
                "--batch",
                "4",
                "--pool",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "held-out accuracy" in capsys.readouterr().out
    assert json.loads((workspace / "idm" / "idm.json").read_text())["config"]["pool"] == 2
    report = workspace / "report"
    assert (
        _evaluate(
            workspace,
            "--idm",
            str(workspace / "idm"),
            "--report",
            str(report),
            "--json",
            str(workspace / "results.json"),
        )
        == 0
    )
    for name in ("results.json", "report.md", "drift_curve.png", "confusion.png", "real_vs_generated.gif"):
        assert (report / name).stat().st_size > 0, name
    results = json.loads((workspace / "results.json").read_text())
    metrics = results["metrics"]
    assert results["info"]["split"] == "test" and results["info"]["seeds"] == [11, 63]
    assert metrics["drift"]["1s"]["episodes"] == 2 and len(results["curves"]["psnr"]) == 30
    assert metrics["physics"]["real"]["score"] >= 0.99
    assert metrics["action_accuracy"]["generated"]["count"] == 60
    # rollouts of 30 frames: their first 1 s (and 4 s) are all of them
    first, overall = metrics["action_accuracy"]["generated_first"], metrics["action_accuracy"]["generated"]["accuracy"]
    assert first["1s"] == first["4s"] == round(overall, 4)
    episodes = metrics["action_accuracy"]["generated_per_episode"]
    assert [e["count"] for e in episodes] == [30, 30]
    assert np.mean([e["accuracy"] for e in episodes]) == pytest.approx(overall, abs=1e-4)
    assert metrics["fvd"].startswith("not computed (weights not found at")
    assert metrics["reconstruction"]["decoder_lpips"].startswith("not computed (weights not found at")
    assert metrics["controllability"]["t=16"]["episodes"] == 2
    things = metrics["moving_things"]  # the platformer's player and enemies move in every real episode
    assert [e["real_movers"] > 0 for e in things["per_episode"]] == [True, True] and 0 <= things["kept"] <= 1
    text = (report / "report.md").read_text()
    assert "| physics, real frames |" in text and "split **test**" in text
    assert "| action accuracy, generated, first 1 s |" in text
    assert "| moving things kept (real play: 1) |" in text
    assert f"- per episode (generated): {episodes[0]['episode']}: {episodes[0]['accuracy']:.4f}; " in text


def test_errors_come_before_any_work(workspace, tmp_path, capsys):
    assert _evaluate(workspace, "--split", "val") == 2
    assert "no episodes of split 'val'" in capsys.readouterr().err
    idm = ["idm", "train", "--data", str(workspace / "shards"), "--steps", "1", "--no-progress"]
    assert main([*idm, "--out", str(tmp_path / "idm0"), "--pool", "0"]) == 2
    assert "--pool must be positive" in capsys.readouterr().err
    assert main([*idm, "--out", str(tmp_path / "idm3"), "--pool", "3"]) == 2
    assert "pool 3 does not divide image_size 256" in capsys.readouterr().err
    assert main(["evaluate", "tiny", "--data", str(workspace / "shards")]) == 2
    assert "no trained weights" in capsys.readouterr().err
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps(
            {
                "base_model_name_or_path": "someone/else",
                "peft_type": "LORA",
                "r": 2,
                "lora_alpha": 4,
                "target_modules": ["to_q"],
            }
        )
    )
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    assert _evaluate(workspace, "--adapter", str(adapter)) == 2
    assert "trained on base 'someone/else'" in capsys.readouterr().err
    WorldModel(tiny_config(num_actions=4)).save_pretrained(tmp_path / "small-vocab")
    assert main(["evaluate", str(tmp_path / "small-vocab"), "--data", str(workspace / "shards")]) == 2
    assert "action vocabularies differ" in capsys.readouterr().err


def test_frame_size_mismatch_is_named():
    model = WorldModel(tiny_config())
    episode = Episode(np.zeros((3, 128, 128, 3), np.uint8), np.zeros(3, np.int64), np.zeros((3, 0)), {})
    with pytest.raises(ValueError, match="reads 256x256"):
        check_compatible(model, [episode])


def test_lora_adapter_of_the_model_is_merged(workspace, tmp_path):
    from peft import LoraConfig, get_peft_model

    base = WorldModel.from_pretrained(workspace / "model")
    tuned = get_peft_model(base.dynamics, LoraConfig(r=2, target_modules=["to_q", "to_v"]))
    for name, parameter in tuned.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.1)  # B starts at zero; make the adapter change something
    tuned.save_pretrained(tmp_path / "adapter")
    config_path = tmp_path / "adapter" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = str(workspace / "model")
    config_path.write_text(json.dumps(config))

    merged = load_model(str(workspace / "model"), str(tmp_path / "adapter"))
    tokens, actions = torch.randint(0, 512, (1, 2, 256)), torch.tensor([[3, 4]])
    with torch.no_grad():
        expected = tuned(tokens, actions)
        assert torch.allclose(merged.dynamics(tokens, actions), expected, atol=1e-4)
        assert not torch.allclose(WorldModel.from_pretrained(workspace / "model").dynamics(tokens, actions), expected)


def test_a_frames_model_reports_its_small_frame_not_a_tokenizer(workspace, tmp_path):
    config = WorldModelConfig(
        name="test-frames",
        family="frames",
        tokenizer={"resolution": 16},
        dynamics={"resolution": 16, "channels": (8, 16), "mid_blocks": 1, "action_dim": 8},
        decoder={"resolution": 16, "channels": (8, 8, 8, 8, 8)},
    )
    WorldModel(config).save_pretrained(tmp_path / "frames-model")
    out = tmp_path / "results.json"
    command = ["evaluate", str(tmp_path / "frames-model"), "--data", str(workspace / "shards"), "--episodes", "1"]
    assert main(command + ["--horizon", "0.2", "--recon-frames", "3", "--json", str(out), "--no-progress"]) == 0
    results = json.loads(out.read_text())
    recon = results["metrics"]["reconstruction"]
    assert recon["tokenizer_psnr"].startswith("not applicable (frames family")  # no learnt tokenizer to score
    assert recon["codebook_used_fraction"].startswith("not applicable")
    assert 10 < recon["small_frame_psnr"] < 60 and recon["small_frame_resolution"] == 16
    rows = {row["metric"]: row for row in results["targets"]}
    assert rows["tokenizer PSNR (dB)"]["status"] == "-"
