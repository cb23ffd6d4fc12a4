"""What a player played, kept as the JPEG frames the page already showed, exported as GIF or MP4.

Frames are stored encoded (about 10 KB each instead of 192 KB raw) and only the last
`max_frames` are kept, so a session left running for hours holds a bounded amount of memory.
"""

from __future__ import annotations

import io
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

FORMATS = ("gif", "mp4")


class RecordingError(ValueError):
    """A recording that cannot be written (nothing played yet, unknown format)."""


@dataclass
class RecordingConfig:
    max_frames: int = 1800     # the last 60 s at 30 FPS
    min_fps: float = 1.0       # playback rate bounds: the recording plays at the pace it was played,
    max_fps: float = 30.0      # within these (GIF frame delays below 20 ms are not honoured by browsers)


class Recording:
    def __init__(self, config: RecordingConfig | None = None):
        self.config = config or RecordingConfig()
        self._frames: deque[bytes] = deque(maxlen=self.config.max_frames)
        self._times: deque[float] = deque(maxlen=self.config.max_frames)

    def __len__(self) -> int:
        return len(self._frames)

    def add(self, jpeg: bytes, time_s: float) -> None:
        self._frames.append(jpeg)
        self._times.append(time_s)

    def clear(self) -> None:
        self._frames.clear()
        self._times.clear()

    def playback_fps(self) -> float:
        """The rate the frames were played at, clamped to the config's bounds."""
        if len(self._times) < 2:
            return self.config.max_fps
        fps = (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-6)
        return float(min(self.config.max_fps, max(self.config.min_fps, fps)))

    def frames(self) -> list[np.ndarray]:
        return [np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")) for jpeg in self._frames]

    def save(self, path: str | Path, fmt: str) -> Path:
        """Write the recording to `path` as `fmt` ("gif" or "mp4"); returns the path."""
        if fmt not in FORMATS:
            raise RecordingError(f"unknown recording format {fmt!r}; choose one of {', '.join(FORMATS)}")
        if len(self) < 2:
            raise RecordingError("nothing to save yet: play a few frames first")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        frames, fps = self.frames(), self.playback_fps()
        if fmt == "gif":
            images = [Image.fromarray(frame) for frame in frames]
            images[0].save(path, save_all=True, append_images=images[1:], loop=0,
                           duration=round(1000 / fps), optimize=False)
        else:
            _write_mp4(path, frames, fps)
        return path


def _write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> None:
    import av
    from fractions import Fraction
    with av.open(str(path), mode="w") as container:
        # H.264 with yuv420p plays in every browser and phone; the rate is a fraction so 7.3 FPS stays 7.3.
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
