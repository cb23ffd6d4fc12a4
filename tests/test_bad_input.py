"""Hostile and unlucky input, each case made here and small: a save racing the game, unknown
models and busy ports, absurd frame rates, half-made registry folders. Every one must end in a
clear message (or a correct result), never a traceback or unbounded work."""

import io
import os
import shutil
import time

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_config
from core.play.recording import Recording
from core.world_model import WorldModel
from finetune.hub import STALE_STAGE_S, LocalRegistry
from finetune.lora import add_lora, save_adapter


def jpeg(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (shade, shade, shade)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_saving_a_recording_while_the_game_appends_frames(tmp_path, monkeypatch):
    recording = Recording()
    for i in range(4):
        recording.add(jpeg(i * 40), time_s=i / 10)
    real_open = Image.open

    def open_while_playing(*args, **kwargs):  # the stream's thread adds a frame mid-save, every time
        recording.add(jpeg(200), time_s=1.0)
        return real_open(*args, **kwargs)

    monkeypatch.setattr("core.play.recording.Image.open", open_while_playing)
    path = recording.save(tmp_path / "mid-game.gif", "gif")
    monkeypatch.undo()
    with Image.open(path) as gif:
        assert gif.n_frames == 4  # the frames there when Save was pressed
    assert len(recording) == 8 and np.asarray(recording.frames()[-1]).mean() > 150


@pytest.fixture
def adapter(tmp_path):
    torch.manual_seed(0)
    return save_adapter(add_lora(WorldModel(tiny_config()), "test-tiny"), tmp_path / "adapter")


def test_a_push_killed_mid_copy_is_neither_listed_nor_left_for_ever(tmp_path, adapter):
    registry = LocalRegistry(tmp_path / "registry")
    registry.push(adapter, "ana/jumpy", game="Jumpy")
    owner = tmp_path / "registry" / "ana"
    stale, running = owner / ".killed.k1ll3d.partial", owner / ".copying.n0w.partial"
    for stage in (stale, running):  # what staged_folder leaves when the push dies after copying the card
        shutil.copytree(owner / "jumpy", stage)
    hours_ago = time.time() - 2 * STALE_STAGE_S
    os.utime(stale, (hours_ago, hours_ago))
    outside = tmp_path / "keep-me"
    outside.mkdir()
    (owner / ".linked.partial").symlink_to(outside, target_is_directory=True)

    assert [entry.repo for entry in registry.list()] == ["ana/jumpy"]
    registry.push(adapter, "ana/second", game="Jumpy")
    assert not stale.exists() and running.is_dir() and outside.is_dir()  # only the abandoned one goes
    assert [entry.repo for entry in registry.list()] == ["ana/jumpy", "ana/second"]
