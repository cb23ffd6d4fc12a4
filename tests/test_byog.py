"""Bring your own game, shortened (README "Bring your own game"; configs/bricks/path.sh is the full one): a
minute of bricks, the game no zoo model trains on, recorded as a video + key log, ingested, fine-tuned from
the shipped nano for a few steps, and scored on a separate held-out recording of other levels."""

import pytest

from core import zoo
from core.cli import main
from core.train.config import load_run_config
from core.train.data import GAMEPLAY, index_shards
from core.world_model import WorldModel
from finetune.lora import load_adapter
from finetune.train import held_out_metrics


def run(*args) -> None:
    assert main([*args, "--no-progress"]) == 0, args


@pytest.mark.slow
def test_a_fine_tune_of_nano_on_a_minute_of_an_unseen_game_beats_the_base_on_held_out_play(tmp_path):
    for split, minutes in (("train", "1"), ("test", "0.3")):
        video, keys = tmp_path / f"{split}.mp4", tmp_path / f"{split}.csv"
        run("record", "--game", "bricks", "--agent", "scripted", "--minutes", minutes, "--split", split,
            "--out", str(video), "--keys", str(keys))  # fmt: skip
        held_out = ["--split", "test"] if split == "test" else []
        run("ingest", str(video), "--actions", str(keys), "--game", "bricks", "--out", str(tmp_path / split), *held_out)
    adapter = tmp_path / "adapter"
    run("finetune", "--base", "nano", "--data", str(tmp_path / "train"), "--out", str(adapter), "--steps", "300",
        "--threads", "2")  # fmt: skip

    config = load_run_config(tmp_path / "adapter.run" / "config.yaml")
    refs = index_shards([str(tmp_path / "test")], GAMEPLAY, "test")
    base = held_out_metrics(WorldModel.from_pretrained(zoo.weights_dir("nano")), refs, config)
    tuned = held_out_metrics(load_adapter(zoo.load("nano"), adapter, base="nano"), refs, config)
    scores = {name: (round(base[name], 5), round(tuned[name], 5)) for name in base}
    # nano plays by its motion net alone (nothing redrawn), so the fine-tune trains that: its moves on held-out play
    assert tuned["motion_loss"] < 0.7 * base["motion_loss"], scores
    assert tuned["motion_hit_moving"] > base["motion_hit_moving"] + 0.15, scores  # more moving squares right
    assert tuned["motion_psnr"] > tuned["motion_psnr_copy_last"] > base["motion_psnr"], scores  # beats repeating
    assert tuned["motion_loop_psnr"] > tuned["motion_loop_psnr_copy_last"], scores  # and played on its own frames
    assert tuned["motion_loss_shuffled_actions"] > 1.1 * tuned["motion_loss"], scores  # its keys matter
