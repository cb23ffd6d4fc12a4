"""Moving things kept: whether a dream still holds the small things that move in the real play.

A dream can follow every key and lose the ball: the judge of action accuracy reads the player, the drift-free
horizon reads colours and patches (a frame without its ball is made of the level's own patches), and PSNR
forgives a few pixels. This counts them. In each frame, a *mover* is a group of touching colour segments
(core/frame_objects.py's: each part of a sprite), each of at least SMALLEST_SEGMENT pixels, under MOVER_AREA of
the frame and with at least CHANGED pixels that differ from the frame before (it moved, or it arrived): a ball,
a bullet, a paddle. A real frame's mover is *kept* when the dreamed frame at the same step has a mover of its
colour (within COLOUR_TOLERANCE) and of its size (within a factor SIZE_RATIO), anywhere: a ball that took
another path is kept, a ball that stopped, vanished or was torn to a speck is not. The share kept over a
rollout is 1 for the real play itself by definition; a dream that loses its ball scores its share of the real
movers.

Things the dream makes that the real play does not have (a ghost, a second ball) are not counted against it:
this measures loss, the drift signals measure invention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from core.frame_objects import COLOUR_TOLERANCE, SMALLEST_SEGMENT, colour_segments

MOVER_AREA = 1 / 100  # of the frame: larger segments (a wall, the sky, a row of bricks) are not things that move
CHANGED = 4  # pixels of a segment that differ from the frame before for it to count as moving
SIZE_RATIO = 2.0  # a dreamed mover matches a real one when their areas are within this factor of each other


@dataclass(frozen=True)
class Movers:
    """The movers of one frame: their mean colours (N, 3) and areas in pixels (N,)."""

    colours: np.ndarray
    areas: np.ndarray

    def __len__(self) -> int:
        return len(self.areas)


def movers(previous: np.ndarray, frame: np.ndarray) -> Movers:
    """The movers of `frame` (H, W, 3) uint8, given the frame before it: moving segments that touch are one mover
    (a ball's outline, fill and highlight), of their summed area and their largest segment's colour."""
    labels = colour_segments(frame)
    count = int(labels.max()) + 1
    areas = np.bincount(labels.ravel(), minlength=count)
    changed = np.abs(frame.astype(np.int16) - previous.astype(np.int16)).sum(-1) >= COLOUR_TOLERANCE
    changed_counts = np.bincount(labels.ravel(), weights=changed.ravel(), minlength=count)
    moving = (areas >= SMALLEST_SEGMENT) & (areas < MOVER_AREA * labels.size) & (changed_counts >= CHANGED)
    groups, found = ndimage.label(moving[labels], structure=np.ones((3, 3)))
    if not found:
        return Movers(np.zeros((0, 3)), np.zeros(0, np.int64))
    segments = np.flatnonzero(moving)
    first_pixel = np.unique(labels.ravel(), return_index=True)[1]  # every label 0..count-1 occurs
    group_of = groups.ravel()[first_pixel[segments]] - 1
    group_areas = np.bincount(group_of, weights=areas[segments], minlength=found).astype(np.int64)
    order = np.lexsort((areas[segments], group_of))  # by group, then by area: each group's largest comes last
    largest = segments[order[np.r_[group_of[order][1:] != group_of[order][:-1], True]]]
    colours = np.stack([ndimage.mean(frame[..., c], labels, largest) for c in range(3)], 1)
    return Movers(colours, group_areas)


def kept_count(real: Movers, dream: Movers) -> int:
    """How many of the real movers find a dreamed one of their colour and size, each dreamed mover serving once
    (the closest in colour first)."""
    if not len(real) or not len(dream):
        return 0
    distance = np.abs(real.colours[:, None] - dream.colours[None]).sum(-1)
    ratio = real.areas[:, None] / dream.areas[None]
    distance[(distance >= COLOUR_TOLERANCE) | (ratio > SIZE_RATIO) | (ratio < 1 / SIZE_RATIO)] = np.inf
    kept, taken = 0, np.zeros(len(dream), bool)
    for i in np.argsort(distance.min(1)):
        candidates = np.where(taken, np.inf, distance[i])
        j = int(np.argmin(candidates))
        if np.isfinite(candidates[j]):
            kept, taken[j] = kept + 1, True
    return kept


class KeptTally:
    """Real and kept mover counts, per episode and step, as a rollout comes in."""

    def __init__(self, episodes: int):
        self.real = [[] for _ in range(episodes)]
        self.kept = [[] for _ in range(episodes)]

    def add(self, episode: int, real_before, real_after, dream_before, dream_after) -> None:
        real = movers(real_before, real_after)
        self.real[episode].append(len(real))
        self.kept[episode].append(kept_count(real, movers(dream_before, dream_after)) if len(real) else 0)

    def summary(self, names: list[str], fps: int, first_seconds=(1, 4)) -> dict:
        real, kept = [np.array(r) for r in self.real], [np.array(k) for k in self.kept]
        total = sum(int(r.sum()) for r in real)
        if not total:
            return {"kept": None, "note": "no real frame has a moving thing (under 1% of the frame) to keep"}

        def share(span) -> float | None:
            seen = sum(int(r[:span].sum()) for r in real)
            return round(sum(int(k[:span].sum()) for k in kept) / seen, 4) if seen else None

        return {
            "kept": share(None),
            "kept_first": {f"{s}s": share(s * fps) for s in first_seconds},
            "per_episode": [
                {
                    "episode": name,
                    "kept": round(int(k.sum()) / int(r.sum()), 4) if r.sum() else None,
                    "real_movers": int(r.sum()),
                }
                for name, r, k in zip(names, real, kept)
            ],
            "real_movers_per_frame": round(total / sum(len(r) for r in real), 3),
            "rule": (
                f"a real frame's mover (touching colour segments, each >= {SMALLEST_SEGMENT} px, < {MOVER_AREA:.0%} "
                f"of the frame and with >= {CHANGED} px changed) is kept when the dream's frame at that step has a "
                f"mover of its colour and within {SIZE_RATIO:g}x its size (see core/evaluation/things.py)"
            ),
        }
