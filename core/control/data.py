"""The controllability lab's data: one fixed, reproducible set of play per game, made once.

Training play is recorded on train-split level seeds, by random keys held for 1-8 frames
(`held`, blind to the game: the key cannot be guessed from the past) or by the scripted
players (coverage, but their next key follows from the game state); the test play is always
`held` on test-split seeds, so every arm is judged on levels it never saw, under keys it could
not predict. Frames are kept in memory area-pooled to the lab's working resolution; the test
clips also keep their 256x256 frames, for models that play at full size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.config import FramePoolConfig
from core.data.recorder import CollectConfig, Collector
from core.evaluation.episodes import Episode, load_episodes
from core.frame_codec import FramePool
from core.frames import to_model

GAMES = ("maze", "platformer", "shooter")
POLICIES = ("held", "scripted")


@dataclass
class LabDataConfig:
    root: str = "runs/control-data"  # where the shards are made once (git-ignored; delete to remake)
    train_frames: int = 12_000  # frames of training play per game and policy
    test_frames: int = 1_600  # frames of held-out (test-split) play per game
    seed: int = 300_000  # first level seed; both splits start here and take their own seeds
    max_steps: int = 400  # episode time limit: short episodes show more levels
    resolution: int = 64  # frames are area-pooled to this size in memory


def shard_folder(config: LabDataConfig, game: str, policy: str, split: str) -> Path:
    return Path(config.root) / f"{game}-{policy}-{split}"


def ensure_data(config: LabDataConfig, games=GAMES, policies=("held",), progress: bool = True) -> None:
    """Record whatever of the lab's data set is missing (a few minutes per game and policy)."""
    wanted = [(g, p, "train", config.train_frames) for g in games for p in policies]
    wanted += [(g, "held", "test", config.test_frames) for g in games]
    for game, policy, split, frames in wanted:
        out = shard_folder(config, game, policy, split)
        if (out / "report.json").is_file():
            continue
        resume = out.is_dir() and any(out.iterdir())
        collect = CollectConfig(
            game=game,
            agent=policy,
            frames=frames,
            seed=config.seed,
            split=split,
            max_steps=config.max_steps,
            num_envs=8,
            chunk=128,
        )
        Collector(collect, out, resume=resume, progress=progress).run()


def pool(frames: np.ndarray, resolution: int) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (T, 3, r, r) in [-1, 1], area-pooled as the frames family's encoder does."""
    return FramePool(FramePoolConfig(resolution)).encode(to_model(frames))


@dataclass
class LabEpisode:
    frames: torch.Tensor  # (T, 3, r, r) float16 in [-1, 1]
    actions: torch.Tensor  # (T,) int64: actions[t] at frames[t] led to frames[t+1]
    source: Episode  # the full-size episode (frames dropped for training play)


def load_play(config: LabDataConfig, game: str, policy: str, split: str, keep_full: bool = False) -> list[LabEpisode]:
    """The continuous stretches of one game's play, pooled; `keep_full` keeps the 256x256 frames too."""
    episodes = load_episodes(shard_folder(config, game, policy, split), split, min_frames=24)
    out = []
    for episode in episodes:
        frames = torch.cat(
            [pool(episode.frames[i : i + 256], config.resolution) for i in range(0, len(episode.frames), 256)]
        ).half()
        if not keep_full:
            episode = Episode(np.empty((0,), np.uint8), episode.actions, episode.state, episode.meta)
        out.append(LabEpisode(frames, torch.from_numpy(episode.actions.astype(np.int64)), episode))
    return out
