"""Checking an uploaded start image and turning it into a 256x256 RGB frame.

Every way an upload can be wrong (not there, empty, too large on disk, too many pixels,
not an image, truncated) is a `StartImageError` whose message says what was wrong and
what to upload instead; the page shows that message, never a stack trace.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.games import FRAME_SIZE


class StartImageError(ValueError):
    """An uploaded start image that cannot be used."""


@dataclass
class UploadConfig:
    max_bytes: int = 20 * 1024 * 1024   # files above this are refused before decoding
    max_pixels: int = 40_000_000        # width*height above this is refused (decompression bombs)
    size: int = FRAME_SIZE              # the model's frame side; the image is letterboxed to it


def load_start_image(path: str | Path | None, config: UploadConfig | None = None) -> np.ndarray:
    """The image at `path` as a (size, size, 3) uint8 frame, letterboxed (aspect kept, black bars)."""
    config = config or UploadConfig()
    if path is None:
        raise StartImageError("no image uploaded: choose a PNG or JPEG file, or start from a game level")
    path = Path(path)
    if not path.is_file():
        raise StartImageError(f"the uploaded file {path.name!r} is gone; upload it again")
    size_bytes = path.stat().st_size
    if size_bytes == 0:
        raise StartImageError(f"{path.name!r} is empty; upload a PNG or JPEG screenshot of a game")
    if size_bytes > config.max_bytes:
        raise StartImageError(f"{path.name!r} is {size_bytes / 2**20:.1f} MB; the limit is "
                              f"{config.max_bytes / 2**20:.0f} MB. Upload a smaller screenshot "
                              f"(it is scaled to {config.size}x{config.size} anyway)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > config.max_pixels:
                    raise StartImageError(f"{path.name!r} is {width}x{height} pixels; the limit is "
                                          f"{config.max_pixels / 1e6:.0f} megapixels. Upload a smaller image")
                image.seek(0)  # an animated GIF or WebP starts from its first frame
                rgb = image.convert("RGB")
    except StartImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise StartImageError(f"{path.name!r} is not an image this app can read; upload a PNG, JPEG, GIF, "
                              f"BMP or WebP file") from None
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data inside a known format
        raise StartImageError(f"{path.name!r} could not be decoded ({err}); the file may be truncated or "
                              f"corrupt. Upload it again or use another image") from None
    return letterbox(rgb, config.size)


def letterbox(image: Image.Image, size: int) -> np.ndarray:
    """Scale `image` to fit a size x size square, centred on black; returns uint8 (size, size, 3)."""
    scale = size / max(image.size)
    width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    # NEAREST keeps pixel-art edges crisp when scaling up; LANCZOS avoids aliasing when scaling down.
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    canvas = Image.new("RGB", (size, size))
    canvas.paste(image.resize((width, height), resample), ((size - width) // 2, (size - height) // 2))
    return np.asarray(canvas, dtype=np.uint8).copy()
