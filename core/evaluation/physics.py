"""Physics consistency of platformer video: find the player in every frame, then check the game's rules.

Nothing here reads the game's state: the same code scores real and generated frames. From the
level seed we rebuild what the rules need (core/games/platformer.py draws it): the level
image, its solid tiles, the player sprite and the level's gravity, jump and run speeds.
Per frame, the camera (the view scrolls sideways) is found by matching banded column profiles
of the frame against the level image (a trimmed mean over columns, so sprites and collected
coins do not move it; a median would not do, since plain ground repeats and more than half
the columns of a view can match elsewhere), and the player by correlating the sprite's colour
layers with the frame (template matching, by FFT). World position = screen position + camera.

Each transition t -> t+1 is checked against:
- found: the player is visible in both frames (leaving through the bottom edge while falling is legal);
- speed: |dx| <= 1.6 * run speed and -jump <= dy <= MAX_FALL, per frame;
- solid: the player's box never overlaps a solid tile;
- gravity: while unsupported, vertical speed does not drop (except a stomp's bounce) and rises
  by no more than fast-fall gravity; over 6 airborne frames it must rise by ~6 g (no hovering).
Positions are whole pixels (floor of the true float position), so every bound carries the
+-1 px of that rounding; that is what makes real frames score 1.0 (calibrated in the tests:
>= 0.99 on real play, low on shuffled frames and on play with gravity or solidity removed).
score = share of transitions that pass every rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.games.art import TILE
from core.games.base import GameConfig
from core.games.platformer import BRICK, GROUND, MAX_FALL, PLAYER, PLAYER_H, PLAYER_W, Platformer

SPRITE_OFFSET = 2  # the player sprite is drawn 2 px up-left of its box (Platformer._draw)
COLOUR_TOL = 24  # max per-channel difference for a pixel to count as a sprite colour
MIN_MATCH = 0.6  # share of the visible sprite pixels that must match to call it found
BANDS = 8  # horizontal bands of the column profiles used to find the camera
TRIM = 0.2  # share of worst-matching columns left out of the camera cost (sprites, coins taken)
SHORTLIST = 32  # camera offsets kept from the squared-distance pass for the robust cost
TIE = 1.0  # camera costs this close to the best count as ties (colour levels per column)
HOVER_WINDOW = 6  # airborne frames over which gravity must have added speed
RULES = ("found", "speed", "solid", "gravity")
_ASSETS = Path(__file__).resolve().parent.parent / "games" / "assets"


@dataclass
class Level:
    """What the rules need of one platformer level, rebuilt from its seed."""

    image: np.ndarray  # (256, 2048, 3) uint8 level as first drawn
    solid: np.ndarray  # (rows, cols) bool
    sprite: np.ndarray  # (16, 16, 3) uint8 player sprite
    mask: np.ndarray  # (16, 16) bool
    gravity: float
    jump_speed: float
    run_speed: float

    @classmethod
    def from_seed(cls, seed: int, tileset: str | None = None) -> Level:
        if tileset and not Path(tileset).is_file():
            tileset = str(_ASSETS / Path(tileset).name)  # shard meta keeps the file name only
        game = Platformer(GameConfig(num_envs=1, tileset=tileset))
        game.reset([seed])
        solid = (game.tilemap[0] == GROUND) | (game.tilemap[0] == BRICK)
        return cls(
            game.level[0].copy(),
            solid,
            game.sprite_rgb[0, PLAYER].copy(),
            game.sprite_mask[0, PLAYER].copy(),
            float(game.gravity[0]),
            float(game.jump_speed[0]),
            float(game.run_speed[0]),
        )


def find_camera(frames: np.ndarray, level: Level) -> np.ndarray:
    """frames uint8 (T, H, W, 3) -> (T,) int camera x: the level column each frame's left edge shows.

    Squared-distance matching of all offsets at once (one conv1d) shortlists candidates; the
    trimmed L1 cost picks among them, and near-ties (plain ground repeats) go to the candidate
    closest to the previous frame's camera, since a view scrolls a few pixels per frame."""

    def profile(images):  # (N, H, W, 3) -> (N, BANDS*3, W) mean colour per column in each band
        n, h, w, _ = images.shape
        return torch.from_numpy(
            images.reshape(n, BANDS, h // BANDS, w, 3)
            .astype(np.float32)
            .mean(2)
            .transpose(0, 1, 3, 2)
            .reshape(n, -1, w)
        )

    width = frames.shape[2]
    keep = int(width * (1 - TRIM))
    level_profile = profile(level.image[None])  # (1, D, Wl)
    windows = level_profile[0].unfold(1, width, 1).transpose(0, 1)  # (C, D, W)
    level_energy = windows.pow(2).sum((1, 2))  # (C,)
    costs, shortlists = [], []
    for start in range(0, len(frames), 32):
        frame_profiles = profile(frames[start : start + 32])  # (b, D, W)
        cross = F.conv1d(level_profile, frame_profiles)[0]  # (b, C)
        distance = level_energy[None] - 2 * cross  # + a per-frame constant
        candidates = distance.topk(min(SHORTLIST, distance.shape[1]), largest=False).indices  # (b, k)
        per_column = (windows[candidates] - frame_profiles[:, None]).abs().sum(2)  # (b, k, W)
        costs.append(per_column.topk(keep, dim=2, largest=False).values.mean(2).numpy())  # (b, k) trimmed mean
        shortlists.append(candidates.numpy())
    cameras, previous = [], None
    for cost, candidates in zip(np.concatenate(costs), np.concatenate(shortlists)):
        near = candidates[cost <= cost.min() + TIE]
        previous = int(near[np.abs(near - previous).argmin()] if previous is not None else candidates[cost.argmin()])
        cameras.append(previous)
    return np.array(cameras, dtype=np.int64)


def _correlate(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Valid cross-correlation by FFT: images (N, H, W), kernel (k, k) -> (N, H-k+1, W-k+1).

    A direct conv2d with a 16x16 kernel unfolds every window (gigabytes for a few hundred frames)."""
    h, w = images.shape[-2:]
    k = kernel.shape[-1]
    spectrum = torch.fft.rfft2(images) * torch.fft.rfft2(kernel, s=(h, w)).conj()
    return torch.fft.irfft2(spectrum, s=(h, w))[..., : h - k + 1, : w - k + 1].round()


def find_player(frames: np.ndarray, level: Level, batch: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """frames uint8 (T, H, W, 3) -> (found (T,) bool, screen x (T,), screen y (T,)) of the sprite's top-left."""
    pad = TILE - 1
    mask = torch.from_numpy(level.mask).float()
    inside = F.pad(torch.ones(1, *frames.shape[1:3]), (pad, pad, pad, pad))
    visible = _correlate(inside, mask)[0]  # (H+p, W+p)
    total = float(level.mask.sum())
    colours = np.unique(level.sprite[level.mask], axis=0)
    layers = [torch.from_numpy(level.mask & (level.sprite == c).all(-1)).float() for c in colours]
    found, xs, ys = [], [], []
    for start in range(0, len(frames), batch):
        x = torch.from_numpy(frames[start : start + batch]).permute(0, 3, 1, 2).float()  # (b, 3, H, W)
        x = F.pad(x, (pad, pad, pad, pad), value=-1000.0)  # never matches a colour
        matched = 0
        for colour, layer in zip(colours, layers):
            close = (x - torch.from_numpy(colour).float().view(1, 3, 1, 1)).abs().amax(1) <= COLOUR_TOL
            matched = matched + _correlate(close.float(), layer)  # (b, H+p, W+p)
        flat = matched.flatten(1)
        best = flat.argmax(1)
        row, col = best // matched.shape[-1], best % matched.shape[-1]
        share = flat.gather(1, best[:, None])[:, 0] / visible[row, col].clamp_min(1)
        found.append(((share >= MIN_MATCH) & (visible[row, col] >= 0.3 * total)).numpy())
        xs.append((col - pad).numpy())
        ys.append((row - pad).numpy())
    return np.concatenate(found), np.concatenate(xs), np.concatenate(ys)


def locate(frames: np.ndarray, level: Level) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """frames uint8 (T, H, W, 3) -> (found (T,), world x (T,), world y (T,)) of the player's box, whole px."""
    found, sx, sy = find_player(frames, level)
    return found, sx + SPRITE_OFFSET + find_camera(frames, level), sy + SPRITE_OFFSET


def _solid_at(level: Level, px, py) -> np.ndarray:
    """Is level pixel (px, py) solid? Outside the map sideways is a wall; above and below are open."""
    rows, cols = level.solid.shape
    px, py = np.asarray(px), np.asarray(py)
    row, col = py // TILE, px // TILE
    hit = level.solid[np.clip(row, 0, rows - 1), np.clip(col, 0, cols - 1)] & (row >= 0) & (row < rows)
    return np.where((col < 0) | (col >= cols), True, hit)


def check(found: np.ndarray, x: np.ndarray, y: np.ndarray, level: Level, screen_height: int = 256) -> dict:
    """Rule checks on located positions (T,) -> {"score", "transitions", "violations": {rule: count}}."""
    found, x, y = np.asarray(found, bool), np.asarray(x, np.int64), np.asarray(y, np.int64)
    steps = len(found) - 1
    if steps < 1:
        return {"score": float("nan"), "transitions": 0, "violations": {r: 0 for r in RULES}}
    both = found[:-1] & found[1:]
    dx, dy = np.diff(x), np.diff(y)  # (T-1,)
    exits_below = found[:-1] & ~found[1:] & (y[:-1] + dy.clip(0) >= screen_height - PLAYER_H - MAX_FALL - 2)
    ok = {"found": both | exits_below}
    ok["speed"] = ~both | (
        (np.abs(dx) <= 1.6 * level.run_speed + 1) & (dy >= -level.jump_speed - 1) & (dy <= MAX_FALL + 1)
    )
    # the box shrunk by the 1 px of rounding on each side may not contain a solid pixel
    corners = [(1, 1), (PLAYER_W - 2, 1), (1, PLAYER_H - 2), (PLAYER_W - 2, PLAYER_H - 2)]
    overlap = np.zeros(len(found), bool)
    for cx, cy in corners:
        overlap |= _solid_at(level, x + cx, y + cy)
    ok["solid"] = ~both | ~overlap[1:]
    # supported: solid just below (either rounding of the bottom edge); ceiling: solid just above
    below = [_solid_at(level, x + cx, y + PLAYER_H + dr) for cx in (0, PLAYER_W - 1, PLAYER_W) for dr in (0, 1)]
    above = [_solid_at(level, x + cx, y - dr) for cx in (0, PLAYER_W - 1, PLAYER_W) for dr in (1, 2)]
    airborne = found & ~np.any(below, 0) & ~np.any(above, 0)  # (T,)
    gravity_ok = np.ones(steps, bool)
    stomp = np.abs(dy + 0.6 * level.jump_speed) <= 1.5
    for t in range(1, steps):  # transition t -> t+1, with the one before it
        if not (airborne[t - 1] and airborne[t] and airborne[t + 1]):
            continue
        accel = dy[t] - dy[t - 1]
        gravity_ok[t] = (accel >= -1 or stomp[t]) and accel <= 2 * level.gravity + 2
        start = t - HOVER_WINDOW
        if (
            gravity_ok[t]
            and start >= 0
            and airborne[start : t + 2].all()
            and dy[t] < MAX_FALL - 1
            and (np.diff(dy[start : t + 1]) >= -1).all()
        ):
            gravity_ok[t] = dy[t] - dy[start] >= HOVER_WINDOW * level.gravity - 2
    ok["gravity"] = gravity_ok
    passed = np.logical_and.reduce([ok[r] for r in RULES])
    return {
        "score": float(passed.mean()),
        "transitions": int(steps),
        "violations": {r: int((~ok[r]).sum()) for r in RULES},
    }


def physics_score(frames: np.ndarray, seed: int, tileset: str | None = None) -> dict:
    """Score platformer frames uint8 (T, H, W, 3) of level `seed` (see the module docstring)."""
    level = Level.from_seed(seed, tileset)
    found, x, y = locate(frames, level)
    return check(found, x, y, level, frames.shape[1])


def pooled(results: list[dict]) -> dict:
    """physics_score results of several rollouts -> one: the share of all their transitions that pass, and each
    rule's violations summed."""
    total = sum(r["transitions"] for r in results)
    passed = sum(r["score"] * r["transitions"] for r in results if r["transitions"])
    violations = {rule: sum(r["violations"][rule] for r in results) for rule in results[0]["violations"]}
    return {"score": round(passed / max(total, 1), 4), "transitions": total, "violations": violations}
