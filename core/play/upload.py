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
    max_bytes: int = 20 * 1024 * 1024  # files above this are refused before decoding
    max_pixels: int = 25_000_000  # width*height above this is refused before decoding (decompression bombs)
    max_side: int = 8192  # a longer side is refused too: 1 x 40,000,000 is few pixels but 15 s to scale
    size: int = FRAME_SIZE  # the model's frame side; the image is letterboxed to it


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
        raise StartImageError(
            f"{path.name!r} is {size_bytes / 2**20:.1f} MB; the limit is "
            f"{config.max_bytes / 2**20:.0f} MB. Upload a smaller screenshot "
            f"(it is scaled to {config.size}x{config.size} anyway)"
        )
    try:
        with warnings.catch_warnings():
            # PIL warns of a bomb when it reads the header; the size check below, stricter, says what was wrong
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # reads the header only; pixels are decoded by convert()
                width, height = image.size
                if width * height > config.max_pixels or max(width, height) > config.max_side:
                    raise StartImageError(
                        f"{path.name!r} is {width}x{height} pixels; the limit is "
                        f"{config.max_pixels / 1e6:.0f} megapixels and {config.max_side} pixels a "
                        f"side. Upload a smaller screenshot (it is scaled to "
                        f"{config.size}x{config.size} anyway)"
                    )
                image.seek(0)  # an animated GIF or WebP starts from its first frame
                rgb = image.convert("RGB")
    except StartImageError:
        raise
    except Image.DecompressionBombError as err:  # over twice PIL's own limit: refused while reading the header
        raise StartImageError(
            f"{path.name!r} is far too large to decode ({err}); the limit is "
            f"{config.max_pixels / 1e6:.0f} megapixels. Upload a smaller screenshot"
        ) from None
    except UnidentifiedImageError:
        raise StartImageError(
            f"{path.name!r} is not an image this app can read; upload a PNG, JPEG, GIF, BMP or WebP file"
        ) from None
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data inside a known format
        raise StartImageError(
            f"{path.name!r} could not be decoded ({err}); the file may be truncated or "
            f"corrupt. Upload it again or use another image"
        ) from None
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
