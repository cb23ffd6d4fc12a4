"""One player's world in the browser: a WorldSession plus what the page needs around it.

A `PlaySession` lives in the player's `gr.State` (one per browser tab). It turns the keys the
page reports into one of the 18 actions, steps the world, encodes the frame for the page,
records it, keeps frames/s statistics, and ends itself after `idle_timeout_s` without any key
input so an abandoned tab stops using the shared CPU.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from core import actions as action_vocab
from core.engine import EngineConfig, default_engine
from core.play.recording import Recording, RecordingConfig
from core.play.stats import FrameStats, StatsConfig
from core.session import SamplingConfig, WorldSession
from core.world_model import WorldModel


class SessionExpired(RuntimeError):
    """The session ended after too long without input; the player starts a new one."""


@dataclass
class PlaySessionConfig:
    idle_timeout_s: float = 300.0  # no key input for this long ends the session
    jpeg_quality: int = 90  # frames sent to the page (and recorded) as JPEG: ~1 ms to encode
    device: str = "cpu"
    engine: EngineConfig = field(default_factory=default_engine)  # precision and decoder backend (core.engine)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)


def keys_to_action(keys: Iterable[str]) -> int:
    """Action id for the keys held in the page; keys that mean nothing to the game (Shift...) are ignored,
    since a player holding one must still be able to play."""
    known = [key for key in keys if (key if key == " " else key.strip().lower()) in action_vocab.INPUT_BUTTONS]
    return action_vocab.from_keys(known)


def parse_key_state(text: str | None) -> tuple[int, list[str]]:
    """The page's key state "KEYSEQ|key|key...": the number of its latest key change, and the held keys
    (joined by '|' since a key name may itself be '+'). Empty text: nothing pressed yet."""
    if not text:
        return 0, []
    seq, *keys = text.split("|")
    try:
        return int(seq), [key for key in keys if key]
    except ValueError:
        raise ValueError(f"key state {text!r} does not start with a change number") from None


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


class PlaySession:
    def __init__(
        self,
        model: WorldModel,
        model_name: str,
        first_frame: np.ndarray,
        start_label: str,
        config: PlaySessionConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config or PlaySessionConfig()
        self.model_name = model_name
        self.start_label = start_label  # "platformer level 3" or "uploaded image x.png"
        self.start_id = 0  # which start of the page this is (the controller numbers them)
        self.stream_token: str | None = None  # how the page reaches this session's frame stream, if it streams
        self._clock = clock  # injectable so timeouts are tested without sleeping
        self._world: WorldSession | None = WorldSession(
            model, self.config.sampling, self.config.device, self.config.engine
        )
        # A Start or Reset can arrive while the page's last step is still running.
        self._lock = threading.Lock()
        self._first_frame = first_frame
        self.recording = Recording(self.config.recording)
        self.stats = FrameStats(self.config.stats)
        self.frame = self._reset()

    def reset(self) -> np.ndarray:
        """Back to the start frame, with a fresh recurrent state, recording and statistics."""
        with self._lock:
            self._check_open()
            return self._reset()

    def _reset(self) -> np.ndarray:
        self.frame = self._world.reset(self._first_frame)
        self.recording.clear()
        self.stats = FrameStats(self.config.stats)
        self.jpeg = encode_jpeg(self.frame, self.config.jpeg_quality)
        self.recording.add(self.jpeg, self._clock())
        self.last_input = self._clock()
        self.last_action = action_vocab.NOOP
        self._frame_index = 0
        return self.frame

    @property
    def frame_index(self) -> int:
        return self._frame_index

    def step(self, keys: Iterable[str]) -> np.ndarray:
        """One frame under the held keys; SessionExpired once the idle timeout has passed (the session
        then closes itself, freeing its world)."""
        keys = list(keys)
        with self._lock:
            start = self._clock()
            self._check_open()
            if keys:
                self.last_input = start
            elif start - self.last_input > self.config.idle_timeout_s:  # the loop steps even when idle
                self._close()
                raise SessionExpired(
                    f"this session ended after {self.config.idle_timeout_s / 60:.0f} minutes without input, "
                    f"to free the CPU for other players; press Start to play again"
                )
            self.last_action = keys_to_action(keys)
            self.frame = self._world.step(self.last_action)
            self._frame_index = self._world.frame_index
            self.jpeg = encode_jpeg(self.frame, self.config.jpeg_quality)
            finished = self._clock()
            self.stats.add(finished, (finished - start) * 1000)
            self.recording.add(self.jpeg, finished)
            return self.frame

    @property
    def closed(self) -> bool:
        return self._world is None

    def close(self) -> None:
        """Drop the world and the recording (the tab closed, or a new start replaced this session)."""
        with self._lock:
            self._close()
            self.recording.clear()

    def _close(self) -> None:
        self._world = None  # an idle timeout keeps the recording, so what was played can still be saved

    def _check_open(self) -> None:
        if self._world is None:
            raise SessionExpired("this session has ended; press Start to play again")

    def summary(self) -> dict:
        return {
            **self.stats.summary(self._clock()),
            "frame": self.frame_index,
            "model": self.model_name,
            "action": action_vocab.ACTIONS[self.last_action],
        }

    def save_recording(self, folder: str | Path, fmt: str) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.model_name)  # registry names hold a '/'
        return self.recording.save(Path(folder) / f"pocketworld-{name}-{self.frame_index}.{fmt}", fmt)
