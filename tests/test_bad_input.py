"""Hostile and unlucky input, each case made here and small: a save racing the game, unknown
models and busy ports, absurd frame rates, half-made registry folders. Every one must end in a
clear message (or a correct result), never a traceback or unbounded work."""

import io

import numpy as np
from PIL import Image

from core.play.recording import Recording


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
