"""Held-out episodes for evaluation: shard chunks of one level stitched back into continuous play.

Shards store an episode as chunks of ~128 frames (core/data/shards.py). Long-horizon metrics
(drift at 30-120 s, the drift-free horizon) need the longest continuous stretch of real play,
so chunks of the same (game, seed, agent) whose frame ranges touch are joined again; a gap
left by the quality filter ends a stretch. Splits are by level seed, so "test" is play on
levels no training run has seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.shards import SPLITS, list_shards, read_shard
from core.evaluation.idm import pool_frames

# real frames kept before a window's first (Episode.before_frames): more than any model's context (nano: 2 frames,
# its last 4 keys), so that a rollout starts from the context the recording gives
WARMUP = 8


@dataclass
class Episode:
    """frames uint8 (T, H, W, 3), or (T, 3, H/p, W/p) when `pooled` = p > 0 (load_episodes(pool=p): as an IDM
    reads them, core.evaluation.idm.pool_frames); actions int64 (T,): actions[t] at frames[t] led to frames[t+1];
    state float32 (T, D) after each frame; meta of its first chunk (game, seed, split, layout...); before_frames,
    before_actions the real play just before frames[0] (a window cut from the middle of a recording: up to
    WARMUP frames, as `frames`, and the keys pressed at each), empty where play starts at frames[0]."""

    frames: np.ndarray
    actions: np.ndarray
    state: np.ndarray
    meta: dict
    pooled: int = 0
    before_frames: np.ndarray | None = None
    before_actions: np.ndarray | None = None

    @property
    def name(self) -> str:
        return f"{self.meta['game']} seed {self.meta['seed']} from frame {self.meta['start_frame']}"


def load_episodes(
    sources: list[str | Path] | str | Path,
    split: str = "test",
    *,
    min_frames: int = 2,
    max_episodes: int | None = None,
    max_frames: int | None = None,
    pool: int = 0,
    windows: bool = False,
) -> list[Episode]:
    """The continuous stretches of play of `split` in the shards at `sources`, longest first.

    Stretches shorter than `min_frames` are left out; each is cut to `max_frames`, or with `windows` cut into
    consecutive windows of `max_frames` (each starting on the last frame of the one before; a rest shorter than
    `min_frames` left out): one long recording then gives several rollouts. pool > 0 keeps
    each chunk's frames only average-pooled by `pool`, as they are read (an IDM's training set:
    a recording's full frames are never all in memory at once). Raises ValueError when the split
    has no usable play, naming the splits that are there."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    sources = sources if isinstance(sources, (list, tuple)) else [sources]
    chunks, seen_splits = {}, set()
    for shard in sorted({s for source in sources for s in list_shards(source)}):
        for sample in read_shard(shard):
            seen_splits.add(sample.meta["split"])
            if sample.meta["split"] != split:
                continue
            if pool:
                sample.frames = pool_frames(sample.frames, pool)
            key = (sample.meta["game"], sample.meta["seed"], sample.meta.get("agent"))
            chunks.setdefault(key, []).append(sample)
    episodes = []
    cut = None if windows else max_frames  # windows are cut from the whole stretch
    for samples in chunks.values():
        samples.sort(key=lambda s: s.meta["start_frame"])
        run = [samples[0]]
        for sample in samples[1:]:
            previous = run[-1].meta
            if sample.meta["start_frame"] == previous["start_frame"] + len(run[-1].frames):
                run.append(sample)
            else:
                episodes.append(_join(run, cut, pool))
                run = [sample]
        episodes.append(_join(run, cut, pool))
    if windows and max_frames:
        episodes = [window for e in episodes for window in _windows(e, max_frames)]
    episodes = [e for e in episodes if len(e.frames) >= min_frames]
    if not episodes:
        found = ", ".join(sorted(seen_splits)) or "none"
        raise ValueError(
            f"no episodes of split {split!r} with at least {min_frames} frames in "
            f"{', '.join(map(str, sources))} (splits present: {found}); collect held-out play with "
            f"`pocketworld collect --split {split} ...` or pass --split"
        )
    episodes.sort(key=lambda e: (-len(e.frames), e.meta["seed"], e.meta["start_frame"]))
    return episodes[:max_episodes] if max_episodes else episodes


def _windows(episode: Episode, frames: int) -> list[Episode]:
    """`episode` as consecutive windows of `frames` frames, each starting on the last frame of the one before,
    with the WARMUP frames before it (a model's context at the window's start is the play that led there: a ball
    in flight, not a still one)."""
    starts = range(0, max(len(episode.frames) - 1, 1), frames - 1)
    return [
        Episode(
            episode.frames[start : start + frames],
            episode.actions[start : start + frames],
            episode.state[start : start + frames],
            dict(
                episode.meta,
                start_frame=episode.meta["start_frame"] + start,
                num_frames=len(episode.frames[start : start + frames]),
            ),
            pooled=episode.pooled,
            before_frames=episode.frames[max(start - WARMUP, 0) : start],
            before_actions=episode.actions[max(start - WARMUP, 0) : start],
        )
        for start in starts
    ]


def _join(run, max_frames: int | None, pool: int) -> Episode:
    frames = np.concatenate([s.frames for s in run])[:max_frames]
    actions = np.concatenate([s.actions for s in run]).astype(np.int64)[:max_frames]
    state = np.concatenate([s.state for s in run]).astype(np.float32)[:max_frames]
    return Episode(frames, actions, state, dict(run[0].meta, num_frames=len(frames)), pooled=pool)
