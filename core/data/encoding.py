"""How frames are stored in shards, and the measurement that chose it.

A chunk of T frames is one lossless PNG of the frames stacked vertically (T*256 x 256).
Measured (`pocketworld bench encoding`, one core): 1.3-1.9 KB a frame on our games (raw is
196 KB), written at 400-550 frames/s and decoded at 1.2-1.3k frames/s. zlib-compressed .npy
was as small and decoded ~3.5x faster (4-5k frames/s), but PNG won on what a shared dataset
needs: it is lossless (a world model must not learn codec artefacts), `datasets` decodes it as
an Image feature the Hub's viewer shows, and every tool opens it. If decoding ever limits
training, switch CANDIDATES' winner here; the shard format carries the extension.
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable

import numpy as np

FRAME = 256
PNG_LEVEL = 6  # zlib level: 1 is ~1.3x faster to write and ~2x larger; 9 is 3x slower for ~15% less


def encode_frames(frames: np.ndarray, level: int = PNG_LEVEL) -> bytes:
    """(T, 256, 256, 3) uint8 -> PNG bytes of the frames stacked vertically."""
    from PIL import Image

    assert frames.dtype == np.uint8 and frames.shape[1:] == (FRAME, FRAME, 3), frames.shape
    buffer = io.BytesIO()
    Image.fromarray(frames.reshape(-1, FRAME, 3)).save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def _open(data):
    from PIL import Image

    if isinstance(data, Image.Image):
        return data
    try:
        with (
            warnings.catch_warnings()
        ):  # callers bound the size from the header (frame_count); PIL's warning adds nothing
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:  # PIL refuses the header of an image over ~179M pixels
        raise ValueError(f"the frames image is too large to decode ({err})") from None


def frame_count(data) -> int:
    """How many frames PNG bytes (or a PIL image) hold, read from the header alone: PIL decodes pixels
    only when asked, so a hostile 256 x 655360 image costs nothing here. A ValueError if the size is
    not a stack of 256x256 frames."""
    image = _open(data)
    if image.width != FRAME or image.height % FRAME or not image.height:
        raise ValueError(
            f"a frames image must be {FRAME} wide and a multiple of {FRAME} tall, got {image.width}x{image.height}"
        )
    return image.height // FRAME


def decode_frames(data) -> np.ndarray:
    """PNG bytes (or a decoded PIL image) -> (T, 256, 256, 3) uint8."""
    image = _open(data)
    frame_count(image)  # the size check, before any pixel is decoded
    return np.asarray(image.convert("RGB")).reshape(-1, FRAME, FRAME, 3)


def _npy(frames, compressed):
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, frames=frames)
    return buffer.getvalue()


CANDIDATES: dict[str, tuple[Callable[[np.ndarray], bytes], Callable[[bytes], np.ndarray]]] = {
    "png (level 1)": (lambda f: encode_frames(f, 1), decode_frames),
    "png (level 6, chosen)": (lambda f: encode_frames(f, 6), decode_frames),
    "npz (zlib)": (lambda f: _npy(f, True), lambda b: np.load(io.BytesIO(b))["frames"]),
    "npy (raw)": (lambda f: _npy(f, False), lambda b: np.load(io.BytesIO(b))["frames"]),
}


def measure(frames: np.ndarray, repeats: int = 3) -> list[dict]:
    """Bytes/frame, encoded and decoded frames/s (best of `repeats`) for each candidate on `frames`."""
    rows = []
    for name, (encode, decode) in CANDIDATES.items():
        encode_s, decode_s = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            data = encode(frames)
            encode_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            decoded = decode(data)
            decode_s.append(time.perf_counter() - start)
        assert np.array_equal(decoded, frames), f"{name} is not lossless"
        rows.append(
            {
                "encoding": name,
                "bytes_per_frame": len(data) / len(frames),
                "encode_fps": len(frames) / min(encode_s),
                "decode_fps": len(frames) / min(decode_s),
            }
        )
    return rows
