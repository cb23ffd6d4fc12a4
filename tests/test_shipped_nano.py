"""The nano that ships in zoo/nano/: a fresh clone plays it with no download, it is small and fp16,
its card is valid and quotes its own evaluation, and its weights are trained (not a random init)."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from core import zoo
from core.config import zoo_config
from core.frames import to_model, to_uint8
from core.games import first_frame
from core.play.controller import START_GAME, Player, PlayerConfig
from core.world_model import WorldModel
from finetune.cards import check_card
from tests.synthetic import psnr

HELD_OUT_SEEDS = (200020, 200039)  # test-split platformer levels (shards/platformer-test)


@pytest.fixture(autouse=True)
def repo_zoo(monkeypatch):
    monkeypatch.delenv("POCKETWORLD_ZOO", raising=False)


def reconstruction_psnr(model: WorldModel) -> float:
    frames = np.stack([first_frame("platformer", seed) for seed in HELD_OUT_SEEDS])
    with torch.inference_mode():
        recon = model.tokenizer.decode(model.tokenizer.encode(to_model(frames)))
    return psnr(frames, to_uint8(recon))


def test_nano_ships_in_the_repo_small_fp16_with_a_card_that_quotes_its_evaluation():
    assert zoo.weights_available("nano") and zoo.describe("nano")["weights_available"]
    folder = zoo.weights_dir("nano")
    with safe_open(folder / "model.safetensors", "pt") as f:
        dtypes = {f.get_tensor(name).dtype for name in f.keys()}
    assert dtypes == {torch.float16}
    model = WorldModel.from_pretrained(folder)
    assert model.config.to_dict() == {**zoo_config("nano").to_dict(), "name": "nano"}
    assert sum(p.numel() for p in model.parameters()) < 30_000_000

    card = check_card((folder / "README.md").read_text(), finetune=False)
    results = json.loads((folder / "eval" / "results.json").read_text())["metrics"]
    teacher_forced = results["prediction"]["teacher_forced_psnr"]
    assert f"| teacher-forced next-frame PSNR (dB) | >= 28 | {teacher_forced:.4g} |" in card.text
    assert "pocketworld evaluate nano" in card.text and "the keys do not move the player" in card.text
    assert (folder / "eval" / "real_vs_generated.gif").is_file()


def test_the_shipped_weights_are_trained_not_a_random_init():
    shipped = reconstruction_psnr(zoo.load("nano"))
    torch.manual_seed(0)
    untrained = reconstruction_psnr(WorldModel(zoo_config("nano")))
    assert shipped > 17 and shipped > untrained + 5, (shipped, untrained)


def test_the_app_plays_the_shipped_nano_by_default(tmp_path):
    player = Player(PlayerConfig(recordings_dir=tmp_path, loop="timer"))
    session, html, running = player.start(None, "nano", START_GAME, "platformer", HELD_OUT_SEEDS[0], None)
    assert running and "data:image/jpeg;base64," in html
    html, running = player.step(session, "1|arrowright")
    assert running and "RIGHT" in html and "frame 1" in html
