"""LoRA fine-tuning through the training loop: a base model that knows the sprite toy is adapted to a
reskinned toy (other background and sprite tokens) and measurably beats the base on its held-out
clips; the adapter is standard peft, loads and merges to the same outputs; gameplay shards are
tokenized on the way; every bad input is refused with a one-line error before anything is written."""

import json
import sys
import time

import pytest
import torch
from peft import PeftModel

from core.cli import main
from core.train import run_stage
from core.train.config import load_run_config
from core.train.data import TOKENS, index_shards
from core.world_model import WorldModel
from finetune.cards import check_card
from finetune.lora import CONFIG_FILE, WEIGHTS_FILE, LoraSettings, load_adapter, merge_adapter
from finetune.train import CURVE_FILE, FinetuneConfig, finetune, held_out_metrics, run_config
from tests.toy import sprite_clips
from tests.train_fixtures import run_overrides, save_tiny_model, write_gameplay_shards, write_token_shards

RESKIN = dict(background=3, sprite=2)  # the changed game: same motion, other tokens for the scene and the sprite


@pytest.fixture(scope="module")
def toy_base(tmp_path_factory):
    """A one-layer tiny model whose dynamics was trained on the sprite toy by the training loop."""
    tmp = tmp_path_factory.mktemp("base")
    init = save_tiny_model(tmp / "init", n_layers=1)
    toy = write_token_shards(tmp / "toy", init, samples=6, frames=16)
    run_stage(
        load_run_config(
            None,
            run_overrides(
                tmp,
                tmp / "init",
                toy,
                "run",
                steps=30,
                **{
                    "data.clip_len": 8,
                    "data.stride": 8,
                    "optim.lr": 1e-2,
                    "optim.warmup_steps": 3,
                    "log.save_every": 30,
                },
            ),
            stage="dynamics",
        )
    )
    return tmp / "run" / "model", toy


@pytest.mark.slow
def test_lora_learns_a_reskinned_game_and_exports_a_standard_adapter(toy_base, tmp_path):
    torch.set_num_threads(1)
    base_dir, toy = toy_base
    base = WorldModel.from_pretrained(base_dir)
    changed = write_token_shards(tmp_path / "reskin", base, samples=6, frames=16, seed=1, game="toy-reskin", **RESKIN)
    config = FinetuneConfig(
        base=str(base_dir),
        data=str(changed),
        out=str(tmp_path / "adapter"),
        lora=LoraSettings(rank=4),
        steps=40,
        lr=1e-2,
        batch_size=2,
        clip_len=8,
        threads=1,
        progress=False,
    )
    started = time.monotonic()
    result = finetune(config)
    seconds = time.monotonic() - started

    # the base knows its own game, fails on the reskinned one, and the fine-tune learns it
    own = held_out_metrics(base, index_shards([str(toy)], TOKENS, "val"), run_config(config, base_dir, toy))
    held_out = result["held_out"]
    print(
        f"\nbase on the toy: loss {own['loss']:.4f}, accuracy {own['accuracy']:.4f}; "
        "on the reskinned toy, base -> LoRA: "
        + ", ".join(f"{name} {v['base']:.4f} -> {v['finetuned']:.4f}" for name, v in held_out.items())
        + f"; fine-tune {seconds:.1f} s, {result['adapter_parameters']} adapter parameters",
        file=sys.stderr,
    )
    assert own["accuracy"] > 0.95
    assert held_out["accuracy"]["base"] < 0.05 and held_out["accuracy"]["finetuned"] > 0.95
    assert held_out["loss"]["finetuned"] < 0.5 * held_out["loss"]["base"]
    assert result["steps"] == 40 and result["game"] == "toy-reskin"

    out = tmp_path / "adapter"
    assert sorted(p.name for p in out.iterdir()) == sorted([CONFIG_FILE, WEIGHTS_FILE, "README.md", CURVE_FILE])
    assert json.loads((out / CONFIG_FILE).read_text())["base_model_name_or_path"] == str(base_dir)
    card = check_card((out / "README.md").read_text(), finetune=True)
    assert card.data.base_model == str(base_dir) and "held-out accuracy" in card.text
    assert (out / CURVE_FILE).stat().st_size > 10_000

    # standard peft: loads with PeftModel.from_pretrained and through load_adapter, merges to the same outputs
    tokens, actions = sprite_clips(2, 6, grid=16, generator=torch.Generator().manual_seed(7), **RESKIN)
    with torch.no_grad():
        plain_peft = PeftModel.from_pretrained(WorldModel.from_pretrained(base_dir).dynamics, str(out)).eval()
        expected = plain_peft(tokens, actions)
        ours = load_adapter(WorldModel.from_pretrained(base_dir), out, base=str(base_dir))
        loaded = ours.dynamics(tokens, actions)
        merged = merge_adapter(ours).dynamics(tokens, actions)
        plain = base.dynamics(tokens, actions)
    torch.testing.assert_close(loaded, expected)
    torch.testing.assert_close(merged, loaded, atol=1e-4, rtol=1e-4)
    assert (loaded.argmax(-1)[:, :-1] == tokens[:, 1:]).float().mean() > 0.95
    assert (plain.argmax(-1)[:, :-1] == tokens[:, 1:]).float().mean() < 0.05


def test_cli_tokenizes_gameplay_shards_then_fine_tunes(tmp_path, capsys):
    save_tiny_model(tmp_path / "base")
    play = write_gameplay_shards(tmp_path / "play", samples=2, frames=6)
    code = main(
        [
            "finetune",
            "--base",
            str(tmp_path / "base"),
            "--data",
            str(play),
            "--out",
            str(tmp_path / "mine"),
            "--steps",
            "2",
            "--batch-size",
            "1",
            "--clip-len",
            "4",
            "--threads",
            "1",
            "--rank",
            "2",
            "--no-progress",
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    result = json.loads(printed.out[printed.out.rindex("\n{") + 1 :])  # the summary, after the loop's own lines
    assert result["steps"] == 2 and result["held_out"] == {}  # all of this data is split "train"
    assert (tmp_path / "mine.run" / "tokens" / "tokens.json").is_file()  # encoded with the base's tokenizer
    assert {CONFIG_FILE, WEIGHTS_FILE, "README.md", CURVE_FILE} <= {p.name for p in (tmp_path / "mine").iterdir()}
    assert json.loads((tmp_path / "mine" / CONFIG_FILE).read_text())["r"] == 2
    assert "synthetic" in (tmp_path / "mine" / "README.md").read_text()

    # a finished run resumed (e.g. after a crash while writing OUT): no new steps, the same adapter again
    code = main(
        [
            "finetune",
            "--base",
            str(tmp_path / "base"),
            "--data",
            str(play),
            "--out",
            str(tmp_path / "again"),
            "--run-dir",
            str(tmp_path / "mine.run"),
            "--steps",
            "2",
            "--batch-size",
            "1",
            "--clip-len",
            "4",
            "--threads",
            "1",
            "--rank",
            "2",
            "--no-progress",
            "--resume",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "again" / WEIGHTS_FILE).read_bytes() == (tmp_path / "mine" / WEIGHTS_FILE).read_bytes()


def test_a_spent_time_budget_stops_training_after_one_step_and_still_saves_the_adapter(tmp_path, capsys):
    save_tiny_model(tmp_path / "base")
    play = write_gameplay_shards(tmp_path / "play", samples=2, frames=6)
    code = main(
        [
            "finetune",
            "--base",
            str(tmp_path / "base"),
            "--data",
            str(play),
            "--out",
            str(tmp_path / "mine"),
            "--steps",
            "50",
            "--minutes",
            "0.00001",
            "--batch-size",
            "1",
            "--clip-len",
            "4",
            "--threads",
            "1",
            "--rank",
            "2",
            "--no-progress",
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    result = json.loads(printed.out[printed.out.rindex("\n{") + 1 :])
    assert result["stopped"] == "time_limit" and result["steps"] == 1  # the encode spent the budget
    assert (tmp_path / "mine" / WEIGHTS_FILE).is_file()


def finetune_error(capsys, *args) -> str:
    assert main(["finetune", *args, "--no-progress"]) == 2
    return capsys.readouterr().err


def test_cli_refuses_bad_input_with_one_line(tmp_path, capsys, monkeypatch):
    base = tmp_path / "base"
    model = save_tiny_model(base)
    tokens = write_token_shards(tmp_path / "tokens", model)
    ok = ["--base", str(base), "--data", str(tokens)]

    assert "minutes must be >= 0" in finetune_error(capsys, *ok, "--minutes", "-1")
    assert "unknown base model 'giant'" in finetune_error(capsys, "--base", "giant", "--data", str(tokens))
    monkeypatch.setenv("POCKETWORLD_ZOO", str(tmp_path / "empty-zoo"))
    assert "no trained weights for 'nano'" in finetune_error(
        capsys, "--base", "nano", "--data", str(tokens), "--out", str(tmp_path / "a")
    )
    (tmp_path / "adapter-folder").mkdir()
    (tmp_path / "adapter-folder" / "adapter_config.json").write_text("{}")
    assert "lacks config.json and model.safetensors" in finetune_error(
        capsys, "--base", str(tmp_path / "adapter-folder"), "--data", str(tokens), "--out", str(tmp_path / "a")
    )

    assert "no such file or folder" in finetune_error(capsys, "--base", str(base), "--data", str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    assert "is empty" in finetune_error(capsys, "--base", str(base), "--data", str(tmp_path / "empty"))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("hello")
    assert "no .tar shards in" in finetune_error(capsys, "--base", str(base), "--data", str(tmp_path / "notes"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "shard-000000.tar").write_bytes(b"not a tar at all" * 64)
    assert "not a readable tar shard" in finetune_error(capsys, "--base", str(base), "--data", str(tmp_path / "broken"))

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    assert "already exists and is not empty" in finetune_error(capsys, *ok, "--out", str(taken))
    assert [p.name for p in taken.iterdir()] == ["keep.txt"] and (taken / "keep.txt").read_text() == "mine"

    assert "LoRA rank must be >= 1" in finetune_error(capsys, *ok, "--rank", "0")
    assert "steps must be a positive" in finetune_error(capsys, *ok, "--steps", "0")

    # token shards of another tokenizer: refused by the dynamics stage before any step
    other = save_tiny_model(tmp_path / "other", seed=1)
    foreign = write_token_shards(tmp_path / "foreign", other)
    assert "encoded by tokenizer(s)" in finetune_error(
        capsys, "--base", str(base), "--data", str(foreign), "--out", str(tmp_path / "b")
    )
    assert not (tmp_path / "b").exists()


def test_qlora_needs_cuda_and_bitsandbytes(tmp_path, capsys, monkeypatch):
    save_tiny_model(tmp_path / "base")
    args = ["--base", str(tmp_path / "base"), "--data", str(tmp_path), "--out", str(tmp_path / "q")]
    if not torch.cuda.is_available():
        assert "needs a CUDA GPU" in finetune_error(capsys, *args, "--quantize", "4bit")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as if it were not installed
    assert "needs bitsandbytes: pip install 'pocketworld[quant]'" in finetune_error(capsys, *args, "--quantize", "8bit")
    assert not (tmp_path / "q").exists()
