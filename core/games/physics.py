"""Box-versus-tile-grid movement shared by the games, vectorised over environments.

Classic axis-separated resolution (move in x, push out of solid tiles, then the same in y), as
in most 2D tile engines. Boxes are at most one tile in size and move less than a tile per
frame, so checking the two corners of the leading edge is exact. A box [x, x + w) touches the
pixels floor(x) .. ceil(x + w) - 1, so a box resting on the floor sits exactly on it.
"""

from __future__ import annotations

import numpy as np

from core.games.art import TILE

LEFT, RIGHT, UP, DOWN = range(4)  # column order of the contacts array


def solid_at(solid: np.ndarray, px: np.ndarray, py: np.ndarray, env: np.ndarray | None = None) -> np.ndarray:
    """Is pixel (px, py) inside a solid tile? solid (N, R, C) bool; px, py (M,) int; env (M,) index
    into solid (default: one probe per env).

    Left and right of the map count as walls; above and below are open (so pits are deadly).
    """
    _, rows, cols = solid.shape
    env = np.arange(len(px)) if env is None else env
    row, col = py // TILE, px // TILE
    inside = (row >= 0) & (row < rows)
    hit = solid[env, np.clip(row, 0, rows - 1), np.clip(col, 0, cols - 1)]
    return np.where((col < 0) | (col >= cols), True, hit & inside)


def move_and_collide(
    solid: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    w: int,
    h: int,
    env: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move boxes (w x h px) by (dx, dy) through the tile grid; return new x, y and contacts (M, 4) bool.

    x, y, dx, dy are (M,); env (M,) says which env's grid each box is in (default: box i in env i).
    """
    assert w < TILE and h < TILE, "boxes of a tile or more need more than two probe corners"
    contacts = np.zeros((len(x), 4), dtype=bool)

    x = x + dx  # (M,) float
    top, bottom = _span(y, h)
    lead = np.where(dx > 0, _span(x, w)[1], np.floor(x).astype(np.int64))
    hit = (dx != 0) & (solid_at(solid, lead, top, env) | solid_at(solid, lead, bottom, env))
    col = lead // TILE
    x = np.where(hit & (dx > 0), col * TILE - w, x)
    x = np.where(hit & (dx < 0), (col + 1) * TILE, x)
    contacts[:, RIGHT], contacts[:, LEFT] = hit & (dx > 0), hit & (dx < 0)

    y = y + dy
    left, right = _span(x, w)
    lead = np.where(dy > 0, _span(y, h)[1], np.floor(y).astype(np.int64))
    hit = (dy != 0) & (solid_at(solid, left, lead, env) | solid_at(solid, right, lead, env))
    row = lead // TILE
    y = np.where(hit & (dy > 0), row * TILE - h, y)
    y = np.where(hit & (dy < 0), (row + 1) * TILE, y)
    contacts[:, DOWN], contacts[:, UP] = hit & (dy > 0), hit & (dy < 0)
    return x.astype(np.float64), y.astype(np.float64), contacts


def _span(start: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last pixel a box [start, start + size) touches (a fractional box touches size + 1)."""
    return np.floor(start).astype(np.int64), np.ceil(start + size).astype(np.int64) - 1


def standing(solid: np.ndarray, x: np.ndarray, y: np.ndarray, w: int, h: int) -> np.ndarray:
    """Is the pixel row just below each box solid under either bottom corner? (N,) bool."""
    (left, right), below = _span(x, w), _span(y, h)[1] + 1
    return solid_at(solid, left, below) | solid_at(solid, right, below)


def overlap(ax, ay, aw, ah, bx, by, bw, bh) -> np.ndarray:
    """Axis-aligned box overlap; arguments broadcast against each other."""
    return (ax < bx + bw) & (bx < ax + aw) & (ay < by + bh) & (by < ay + ah)


def hashed_uniform(seeds: np.ndarray, t: np.ndarray, salt: int, k: int) -> np.ndarray:
    """Deterministic uniforms in [0, 1), shape (N, k), from (level seed, frame, salt, index).

    A counter-based hash (splitmix64) instead of a shared RNG, so each environment's randomness
    depends on its own level and clock only: the same seed and actions replay exactly in any
    batch slot.
    """
    z = (
        seeds.astype(np.uint64)[:, None] * np.uint64(0x9E3779B97F4A7C15)
        + t.astype(np.uint64)[:, None] * np.uint64(0xD1B54A32D192ED03)
        + np.array([salt], dtype=np.uint64) * np.uint64(0x8CB92BA72F3D8DD7)
        + np.arange(k, dtype=np.uint64)[None, :] * np.uint64(0xABC98388FB8FAC03)
    )
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)
