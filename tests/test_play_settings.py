"""The play settings a fine-tune ships with (finetune/play_settings.py) and that an adapter carries
(finetune/lora.py, play.json): chosen by held-out rollouts, applied on every load, checked like the weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.data.shards import DATA_VERSION, Sample, ShardWriter
from core.frame_motion import move_table
from core.train.data import index_shards
from core.world_model import WorldModel
from finetune.lora import PLAY_FILE, AdapterError, LoraSettings, add_lora, load_adapter, save_adapter
from finetune.play_settings import choose_play_settings
from finetune.registry import LocalRegistry
from tests.conftest import tiny_config
from tests.test_frames_family import frames_config

MOTION = {"radius": 4, "channels": (8, 16), "mid_blocks": 1, "hidden": 16, "redraw": False}
STEP = 2  # px a frame: the one move the test net favours


def leaning_model(margin: float) -> WorldModel:
    """A motion-net model sure of nothing but that every square moves STEP px right, `margin` nats over staying."""
    model = WorldModel(frames_config(motion=MOTION)).eval()
    motion = model.dynamics.motion
    right = move_table(MOTION["radius"]).tolist().index([STEP, 0])
    with torch.no_grad():
        head = motion.head[-1]
        head.weight.zero_()
        head.bias.fill_(-20.0)
        head.bias[motion.stay] = 0.0
        head.bias[right] = margin
    return model


def texture_clips(folder, moving: bool, clips: int = 2, length: int = 20):
    """Held-out gameplay of a fixed random texture under NOOP that stands still, or (`moving`) slides STEP px right
    a frame, the left edge repeated (as a move draws past the border)."""
    rng = np.random.default_rng(0)
    writer = ShardWriter(folder)
    for i in range(clips):
        frame = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
        frames = [frame]
        for _ in range(length - 1):
            last = frames[-1]
            frames.append(np.concatenate([np.repeat(last[:, :1], STEP, 1), last[:, :-STEP]], 1) if moving else last)
        meta = {"game": "texture", "seed": i, "split": "val", "start_frame": 0, "fps": 30, "version": DATA_VERSION}
        writer.write(Sample(np.stack(frames), np.zeros(length, np.int64), np.zeros((length, 0), np.float32), meta))
    writer.close()
    return index_shards([str(folder)], "gameplay", "val")


@pytest.mark.parametrize(("moving", "chosen"), [(False, 4.0), (True, 0.0)])
def test_the_stay_prior_is_the_one_whose_held_out_rollouts_stay_closest_to_the_real_play(tmp_path, moving, chosen):
    model = leaning_model(margin=3.0)
    model.dynamics.motion.config.stay_bias = 1.5
    sprite = tuple(("sprite", bias) for bias in (0.0, 4.0, 7.0, 10.0, 13.0))
    choice = choose_play_settings(model, texture_clips(tmp_path / "play", moving), sprite, frames=8, clips=2)
    scores = choice["rollout_psnr"]
    # a still texture: the net's 3-nat lean slides it away unless stay gains more than 3 (4: the smallest that
    # does); a sliding one: only no prior lets the net's move through
    assert (choice["decode"], choice["stay_bias"]) == ("sprite", chosen) and (choice["frames"], choice["clips"]) == (
        8,
        2,
    )
    if moving:
        assert scores["sprite 0"] > max(score for name, score in scores.items() if name != "sprite 0") + 5
    else:  # every prior over the lean keeps it still: the smallest of them is chosen
        assert scores["sprite 0"] + 5 < scores["sprite 4"] == scores["sprite 13"] == max(scores.values())
    assert model.dynamics.motion.config.stay_bias == 1.5  # the model is left as it was


def test_no_prior_is_chosen_without_a_motion_net_or_a_long_enough_held_out_clip(tmp_path):
    refs = texture_clips(tmp_path / "play", moving=False, length=6)
    assert choose_play_settings(leaning_model(3.0), refs, frames=8) is None
    assert choose_play_settings(WorldModel(frames_config()), refs, frames=4) is None


def adapter_of(model: WorldModel, folder, play=None):
    return save_adapter(add_lora(model, "base", LoraSettings(rank=2)), folder, play=play)


def test_an_adapter_carries_its_stay_prior_to_every_load_and_through_a_registry(tmp_path):
    adapter = adapter_of(leaning_model(3.0), tmp_path / "adapter", play={"stay_bias": 7.0, "decode": "outcome"})
    assert json.loads((adapter / PLAY_FILE).read_text()) == {"stay_bias": 7.0, "decode": "outcome"}
    loaded = load_adapter(leaning_model(3.0), adapter, base="base")
    assert loaded.dynamics.motion.config.stay_bias == 7.0 and loaded.dynamics.motion.config.decode == "outcome"
    registry = LocalRegistry(tmp_path / "registry")
    registry.push(adapter, "me/texture", game="texture")
    pulled = registry.pull("me/texture", tmp_path / "pulled")
    assert load_adapter(leaning_model(3.0), pulled).dynamics.motion.config.stay_bias == 7.0
    plain = adapter_of(leaning_model(3.0), tmp_path / "plain")
    assert not (plain / PLAY_FILE).exists()
    assert load_adapter(leaning_model(3.0), plain).dynamics.motion.config.stay_bias == 0.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"stay_bias": -1}', r"stay_bias must be a number from 0 to 64, got -1"),
        ('{"stay_bias": true}', r"stay_bias must be a number from 0 to 64, got True"),
        ('{"stay_bias": NaN}', r"NaN"),
        ('{"temperature": 2}', r"unknown play setting\(s\) \['temperature'\]; known: \['decode', 'stay_bias'\]"),
        ("[4]", r"expected a JSON object, got list"),
        ('{"decode": "best"}', r"decode must be one of square, sprite, outcome, objects, got 'best'"),
    ],
)
def test_bad_play_settings_are_refused_before_anything_loads_or_is_pushed(tmp_path, text, message):
    adapter = adapter_of(leaning_model(3.0), tmp_path / "adapter")
    (adapter / PLAY_FILE).write_text(text)
    with pytest.raises(AdapterError, match=message):
        load_adapter(leaning_model(3.0), adapter)
    with pytest.raises(AdapterError, match=message):
        LocalRegistry(tmp_path / "registry").push(adapter, "me/texture", game="texture")
    assert not (tmp_path / "registry").exists() or not any((tmp_path / "registry").rglob(PLAY_FILE))


def test_a_stay_prior_on_a_model_without_a_motion_net_is_refused(tmp_path):
    adapter = adapter_of(WorldModel(tiny_config()), tmp_path / "adapter", play={"stay_bias": 2.0})
    with pytest.raises(AdapterError, match="only a frames model with a motion net has; this base \\(tokens family\\)"):
        load_adapter(WorldModel(tiny_config()), adapter)
