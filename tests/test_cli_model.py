import json
import subprocess
import sys

from core.cli import main


def test_zoo_json_lists_every_variant_with_its_parts(capsys):
    assert main(["zoo", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["nano", "tiny", "base", "large"]
    for row in rows:
        assert set(row) >= {
            "name",
            "params_total",
            "params_tokenizer",
            "params_dynamics",
            "params_decoder",
            "weights_available",
        }
        assert row["params_total"] == row["params_tokenizer"] + row["params_dynamics"] + row["params_decoder"]
        assert isinstance(row["weights_available"], bool)


def test_zoo_sees_weights_saved_in_the_zoo_folder(tmp_path, monkeypatch, capsys):
    from core.world_model import WorldModel
    from tests.conftest import tiny_config

    monkeypatch.setenv("POCKETWORLD_ZOO", str(tmp_path))
    WorldModel(tiny_config()).save_pretrained(tmp_path / "tiny")
    main(["zoo", "--json"])
    available = {r["name"]: r["weights_available"] for r in json.loads(capsys.readouterr().out)}
    assert available == {"nano": False, "tiny": True, "base": False, "large": False}


def test_loading_a_variant_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    import pytest

    from core.zoo import WeightsNotAvailable, load

    monkeypatch.setenv("POCKETWORLD_ZOO", str(tmp_path))
    with pytest.raises(WeightsNotAvailable, match="no trained weights for 'base'.*pocketworld train"):
        load("base")


def test_every_entry_point_resolves_a_model_the_same_way(tmp_path, monkeypatch):
    """evaluate's loader, finetune's --base, the Fine-tune tab and the app's model list all go through
    core.zoo, so POCKETWORLD_ZOO, a folder path and a missing variant mean the same thing in each."""
    import pytest
    import torch

    from core import zoo
    from core.play.finetune_tab import FinetuneQueue, FinetuneTabConfig
    from core.play.models import ModelCache, zoo_choices
    from finetune.train import FinetuneConfig, finetune
    from tests.train_fixtures import save_tiny_model

    monkeypatch.setenv("POCKETWORLD_ZOO", str(tmp_path / "zoo"))
    saved = save_tiny_model(tmp_path / "zoo" / "nano", seed=3)
    queue = FinetuneQueue(FinetuneTabConfig(work_dir=tmp_path / "jobs"), run=lambda config: {})
    data = tmp_path / "gameplay.tar"

    def finetune_error(base):  # finetune resolves --base before it reads any data
        with pytest.raises((ValueError, FileNotFoundError)) as err:
            finetune(FinetuneConfig(base=base, data=str(data), out=str(tmp_path / "out"), progress=False))
        return str(err.value)

    weights = saved.state_dict()["decoder.to_rgb.weight"]
    assert torch.equal(zoo.load("nano").state_dict()["decoder.to_rgb.weight"], weights)  # evaluate
    assert torch.equal(ModelCache().get("nano").state_dict()["decoder.to_rgb.weight"], weights)  # play
    assert {c.value: c.playable for c in zoo_choices()}["nano"]  # the app's list
    assert "no such file" in finetune_error("nano")  # past the resolver: it stopped at the missing data
    assert queue._check_options("nano", "clip.mp4", 4, 10) == ""  # Fine-tune tab
    folder = tmp_path / "zoo" / "nano"
    assert zoo.model_dir(str(folder)) == folder and zoo.load(str(folder)).config == saved.config

    # a variant without weights: one message, from every entry point
    missing = zoo.missing_weights_text("tiny")
    with pytest.raises(zoo.WeightsNotAvailable) as err:
        zoo.load("tiny")
    assert str(err.value) == missing and str(tmp_path / "zoo" / "tiny") in missing
    with pytest.raises(zoo.WeightsNotAvailable):
        ModelCache().get("tiny")
    assert {c.value: c.how_to_get for c in zoo_choices()}["tiny"] == missing
    assert finetune_error("tiny") == missing
    assert queue._check_options("tiny", "clip.mp4", 4, 10) == missing

    # neither a variant nor a folder; a folder without weights
    with pytest.raises(zoo.UnknownModelError, match="unknown model 'giant'"):
        zoo.load("giant")
    assert finetune_error("giant").startswith("unknown base model 'giant'")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="lacks config.json and model.safetensors"):
        zoo.load(str(tmp_path / "empty"))
    assert "lacks config.json and model.safetensors" in finetune_error(str(tmp_path / "empty"))


def test_bench_play_prints_a_table_and_writes_the_contract_fields(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "play",
                "--variant",
                "nano",
                "--steps",
                "3",
                "--warmup",
                "1",
                "--threads",
                "1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert set(result) >= {"fps", "latency_ms_p50", "latency_ms_p95", "peak_rss_mb", "threads", "variant", "precision"}
    assert result["variant"] == "nano" and result["threads"] == 1 and result["fps"] > 0
    assert result["token_agreement"] is None  # the shipped nano is a frames model: it has no token ids
    assert "fps" in capsys.readouterr().out


def test_unknown_variant_is_a_one_line_error():
    done = subprocess.run(
        [sys.executable, "-m", "core", "bench", "play", "--variant", "huge"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "unknown variant 'huge'; the zoo has: nano, tiny, base, large" in done.stderr
    assert "Traceback" not in done.stderr
