"""What a player played, kept as the JPEG frames the page already showed, exported as GIF or MP4.

Frames are stored encoded (about 10 KB each instead of 192 KB raw) and only the last
`max_frames` are kept, so a session left running for hours holds a bounded amount of memory.
The frame stream appends from its worker thread while the page's Save button reads, so every
read takes a snapshot under a lock and decodes it outside.
"""

from __future__ import annotations

import io
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.data.video import write_video

FORMATS = ("gif", "mp4")


class RecordingError(ValueError):
    """A recording that cannot be written (nothing played yet, unknown format)."""


@dataclass
class RecordingConfig:
    max_frames: int = 1800  # the last 60 s at 30 FPS
    min_fps: float = 1.0  # playback rate bounds: the recording plays at the pace it was played,
    max_fps: float = 30.0  # within these (GIF frame delays below 20 ms are not honoured by browsers)


class Recording:
    def __init__(self, config: RecordingConfig | None = None):
        self.config = config or RecordingConfig()
        self._frames: deque[bytes] = deque(maxlen=self.config.max_frames)
        self._times: deque[float] = deque(maxlen=self.config.max_frames)
        self._lock = threading.Lock()  # frames and times change together, and never while being copied

    def __len__(self) -> int:
        return len(self._frames)

    def add(self, jpeg: bytes, time_s: float) -> None:
        with self._lock:
            self._frames.append(jpeg)
            self._times.append(time_s)

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._times.clear()

    def snapshot(self) -> tuple[list[bytes], list[float]]:
        """(JPEG frames, their times) as they are now; playing on does not change them."""
        with self._lock:
            return list(self._frames), list(self._times)

    def playback_fps(self, times: list[float] | None = None) -> float:
        """The rate the frames (of a snapshot's `times`, else of now) were played at, clamped to the config's bounds."""
        times = self.snapshot()[1] if times is None else times
        if len(times) < 2:
            return self.config.max_fps
        fps = (len(times) - 1) / max(times[-1] - times[0], 1e-6)
        return float(min(self.config.max_fps, max(self.config.min_fps, fps)))

    def frames(self, jpegs: list[bytes] | None = None) -> list[np.ndarray]:
        """Decoded frames of a snapshot's `jpegs`, else of now (decoded outside the lock: play goes on meanwhile)."""
        jpegs = self.snapshot()[0] if jpegs is None else jpegs
        return [np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")) for jpeg in jpegs]

    def save(self, path: str | Path, fmt: str) -> Path:
        """Write the recording to `path` as `fmt` ("gif" or "mp4"); returns the path."""
        if fmt not in FORMATS:
            raise RecordingError(f"unknown recording format {fmt!r}; choose one of {', '.join(FORMATS)}")
        jpegs, times = self.snapshot()
        if len(jpegs) < 2:
            raise RecordingError("nothing to save yet: play a few frames first")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        frames, fps = self.frames(jpegs), self.playback_fps(times)
        if fmt == "gif":
            images = [Image.fromarray(frame) for frame in frames]
            images[0].save(
                path, save_all=True, append_images=images[1:], loop=0, duration=round(1000 / fps), optimize=False
            )
        else:
            write_video(path, frames, fps, suffix=".mp4")
        return path
