"""Does the dream follow the keys? The check a player makes, as a number and a picture.

From the first frame of held-out levels, each key of a pair (RIGHT/LEFT) is held for N steps in
the real game and in the dream. The two real outcomes differ only where the key mattered (the
player, what it pushed or shot): on those pixels the dream under RIGHT should be closer to the
real RIGHT outcome than to the real LEFT one, and the other way round. The margin (dB, the
mean over both keys) is positive for a model that follows the keys and zero for one that
ignores them (its two dreams are the same frame); a level counts as followed when both dreams
are nearer their own key's outcome. A strip of frames, real above dreamed, shows it; for a frames
model a third row shows the dynamics' own small frames, scaled up by repeating pixels, so that blur
the dynamics made can be told from blur the upsampler made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.actions import ACTION_IDS
from core.evaluation.image_quality import masked_psnr as psnr_where

HELD_OUT_SEEDS = (200020, 200039, 200072)  # levels of the test split (core.data.shards.split_of)


@dataclass
class KeysConfig:
    games: tuple[str, ...] = ("maze", "platformer", "shooter")
    seeds: tuple[int, ...] = HELD_OUT_SEEDS
    keys: tuple[str, str] = ("RIGHT", "LEFT")
    steps: int = 12  # frames each key is held
    strip_every: int = 3  # the picture shows every this-many-th frame
    differ: int = 24  # a pixel is where the keys mattered if a channel differs by more (of 255)


def held_rollouts(model, game: str, seed: int, key: str, steps: int) -> tuple[np.ndarray, ...]:
    """-> (real, dreamed) uint8 (steps + 1, H, W, 3): the level's first frame, then `key` held `steps` times;
    for a frames model also the dynamics' small frames, the first one pooled from the real frame."""
    import torch.nn.functional as F

    from core.frames import to_model, to_uint8
    from core.games import make_game
    from core.session import WorldSession

    env = make_game(game, num_envs=1)
    real = [env.reset([seed])[0]]
    for _ in range(steps):
        real.append(env.step(np.array([ACTION_IDS[key]]))[0][0])
    session = WorldSession(model)
    dreamed = [session.reset(seed=seed, game=game)]
    if model.config.family != "frames":
        dreamed += [session.step(key) for _ in range(steps)]
        return np.stack(real), np.stack(dreamed)
    size = dreamed[0].shape[0]
    small = [model.encode(to_model(dreamed[0][None]))]
    for _ in range(steps):
        dreamed.append(session.step(key))
        predicted = session.prediction  # a motion net's FramePrediction has no small frame: show what it drew, pooled
        small.append(
            predicted.clamp(-1, 1) if torch.is_tensor(predicted) else model.encode(to_model(dreamed[-1][None]))
        )
    scaled = to_uint8(F.interpolate(torch.cat(small).float(), size=(size, size), mode="nearest"))
    return np.stack(real), np.stack(dreamed), np.asarray(scaled)


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB) of uint8 frames a, b (H, W, 3) over the pixels where mask (H, W) is True."""
    x, y = (torch.from_numpy(f).permute(2, 0, 1)[None].float() for f in (a, b))
    return float(psnr_where(x, y, torch.from_numpy(mask)[None, None].float(), peak=255.0))


def score_game(model, game: str, config: KeysConfig) -> tuple[dict, list[np.ndarray]]:
    """-> (scores of one game, one strip picture per seed)."""
    first, second = config.keys
    margins, wins, moved, strips = [], 0, [], []
    for seed in config.seeds:
        runs = {key: held_rollouts(model, game, seed, key, config.steps) for key in config.keys}
        real_end = {key: runs[key][0][-1] for key in config.keys}
        mask = np.abs(real_end[first].astype(int) - real_end[second].astype(int)).max(-1) > config.differ
        moved.append(float(mask.mean()))
        pair = []
        for key, other in ((first, second), (second, first)):
            dream_end = runs[key][1][-1]
            pair.append(masked_psnr(dream_end, real_end[key], mask) - masked_psnr(dream_end, real_end[other], mask))
        margins += pair
        wins += min(pair) > 0  # both dreams nearer their own key's outcome: one frame for both cannot be
        strips.append(strip(runs, config))
    return {
        "game": game,
        "margin_db": float(np.mean(margins)),
        "follows": wins,
        "trials": len(config.seeds),
        "keys_matter_share": float(np.mean(moved)),
    }, strips


def strip(runs: dict, config: KeysConfig) -> np.ndarray:
    """Rows: real and dreamed frames (and the dynamics' small ones) under each key; columns: every
    strip_every-th step."""
    picks = list(range(0, config.steps + 1, config.strip_every))
    rows = []
    for key in config.keys:
        rows += [np.concatenate(list(frames[picks]), 1) for frames in runs[key]]
    return np.concatenate(rows, 0)


def table(results: list[dict]) -> str:
    lines = ["| game | margin (dB) | follows | pixels where the keys matter |", "|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['game']} | {r['margin_db']:+.2f} | {r['follows']}/{r['trials']} | {r['keys_matter_share']:.2%} |"
        )
    return "\n".join(lines)
