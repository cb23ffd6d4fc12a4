"""Vectorised drawing for the games: level images from tile maps, masked sprite blits, digits.

Levels are painted once per reset (and patched when a tile changes), so a frame is a camera
crop of the level image plus a few sprites drawn by fancy indexing over every environment at
once. That split is what keeps rendering at thousands of 256x256 frames per second per core.
"""

from __future__ import annotations

import numpy as np

from core.games.art import TILE

_SPAN = np.arange(TILE)

# 3x5 digit glyphs for score displays, drawn at 2x (6x10 pixels, 8-pixel advance).
_DIGITS = (
    "111101101101111",
    "010110010010111",
    "111001111100111",
    "111001111001111",
    "101101111001001",
    "111100111001111",
    "111100111101111",
    "111001001001001",
    "111101111101111",
    "111101111001111",
)
DIGIT_MASKS = np.zeros((10, TILE, TILE), dtype=bool)  # (10, 16, 16): glyph in the top-left 6x10
for _d, _bits in enumerate(_DIGITS):
    DIGIT_MASKS[_d, :10, :6] = np.kron(
        np.array([int(b) for b in _bits], dtype=bool).reshape(5, 3), np.ones((2, 2), bool)
    )


def paint_level(tiles: np.ndarray, tilemap: np.ndarray) -> np.ndarray:
    """Tiles (T, 16, 16, 3) + tile ids (R, C) -> level image (R*16, C*16, 3)."""
    rows, cols = tilemap.shape
    blocks = tiles[tilemap]  # (R, C, 16, 16, 3)
    return blocks.transpose(0, 2, 1, 3, 4).reshape(rows * TILE, cols * TILE, 3)


def paint_tile(level: np.ndarray, tiles: np.ndarray, row: int, col: int, tile_id: int) -> None:
    """Repaint one tile of a level image in place (a pickup taken, a door opened)."""
    level[row * TILE : (row + 1) * TILE, col * TILE : (col + 1) * TILE] = tiles[tile_id]


def crop(levels: np.ndarray, camera: np.ndarray, size: int) -> np.ndarray:
    """Levels (N, H, W, 3) + camera top-left (N, 2) as (x, y) -> frames (N, size, size, 3).

    A loop of slice copies: each is one contiguous memcpy per row, faster than any gather.
    """
    frames = np.empty((len(levels), size, size, 3), dtype=np.uint8)
    for i, (x, y) in enumerate(camera.tolist()):
        frames[i] = levels[i, y : y + size, x : x + size]
    return frames


def blit(
    frames: np.ndarray,
    rgb: np.ndarray,
    mask: np.ndarray,
    env: np.ndarray,
    sprite: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> None:
    """Draw M masked 16x16 sprites in place, clipped to the frame.

    frames (N, H, W, 3) contiguous; rgb (N, S, 16, 16, 3) per-env sprite colours and mask
    (N, S, 16, 16), or (1, S, ...) for one atlas shared by all frames; env, sprite, x, y (M,)
    integer arrays: which frame, which sprite, top-left screen pixel.
    """
    assert frames.flags.c_contiguous, "blit writes through a flat view"
    height, width = frames.shape[1:3]
    on_screen = (x > -TILE) & (x < width) & (y > -TILE) & (y < height)
    env, sprite, x, y = env[on_screen], sprite[on_screen], x[on_screen], y[on_screen]
    rows_ok = (y[:, None] + _SPAN >= 0) & (y[:, None] + _SPAN < height)  # (M, 16)
    cols_ok = (x[:, None] + _SPAN >= 0) & (x[:, None] + _SPAN < width)  # (M, 16)
    atlas = env if len(rgb) > 1 else np.zeros_like(env)
    draw = mask[atlas, sprite] & rows_ok[:, :, None] & cols_ok[:, None, :]  # (M, 16, 16)
    # flat indices and one 3-byte "void" element per pixel: measurably faster than indexing
    # (env, row, col, channel) separately, and blits are much of a frame's cost
    hit = np.flatnonzero(draw)
    m, r, c = hit >> 8, (hit >> 4) & 15, hit & 15
    target = ((env * height + y) * width + x)[m] + r * width + c
    source = (atlas * rgb.shape[1] + sprite)[m] * (TILE * TILE) + (hit & 255)
    _pixels(frames)[target] = _pixels(rgb)[source]


def _pixels(images: np.ndarray) -> np.ndarray:
    """A contiguous (..., 3) uint8 array viewed as a flat array of 3-byte pixels."""
    return np.ascontiguousarray(images).view(np.dtype((np.void, 3))).reshape(-1)


def blit_layers(frames: np.ndarray, images: np.ndarray, masks: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
    """Draw one masked layer per frame in place (e.g. a whole enemy formation), clipped to the frame.

    frames (N, H, W, 3); images (N, h, w, 3); masks (N, h, w) bool; x, y (N,) int top-left.
    One masked slice copy per frame, far cheaper than blitting each sprite of a large group.
    """
    height, width = frames.shape[1:3]
    h, w = masks.shape[1:]
    for i, (left, top) in enumerate(zip(x.tolist(), y.tolist())):
        x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + w, width), min(top + h, height)
        if x0 >= x1 or y0 >= y1:
            continue
        np.copyto(
            frames[i, y0:y1, x0:x1],
            images[i, y0 - top : y1 - top, x0 - left : x1 - left],
            where=masks[i, y0 - top : y1 - top, x0 - left : x1 - left, None],
        )


def draw_numbers(frames: np.ndarray, values: np.ndarray, x: int, y: int, digits: int, colour=(255, 255, 255)) -> None:
    """Draw each frame's non-negative integer `values` (N,) zero-padded to `digits` digits at (x, y)."""
    n = len(frames)
    places = 10 ** np.arange(digits - 1, -1, -1)
    glyphs = (np.minimum(values, 10**digits - 1)[:, None] // places[None, :]) % 10  # (N, digits)
    env = np.repeat(np.arange(n), digits)
    xs = np.tile(x + 8 * np.arange(digits), n)
    rgb = np.broadcast_to(np.asarray(colour, np.uint8), (1, 10, TILE, TILE, 3))
    blit(frames, rgb, DIGIT_MASKS[None], env, glyphs.reshape(-1), xs, np.full_like(xs, y))
