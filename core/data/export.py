"""Export play the way a developer exports it from their own engine: a video file and a key log.

`pocketworld collect` writes our shards, with ground-truth state; a user's game gives only what its
engine can record: the frames as an MP4/WebM and the keys held at each frame as a CSV or JSON log
(finetune/action_log.py). This plays one of our games (bricks, held out of every zoo model's training,
is the one meant for it) into exactly that pair, so the bring-your-own-game path (`pocketworld ingest`,
`finetune`, `evaluate`) can be tried end to end on a game no shipped model has seen.

One game is played at a time, as a person plays: level after level of the chosen split, each starting
where the last one ended, in one continuous recording. Frame k of the video is what was on screen when
the keys of log entry k were held. Both files are written under temporary names and renamed when whole.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.atomic import atomic_write
from core.data.shards import split_of
from core.data.video import FORMATS, write_video
from core.games.base import FPS

KEY_SUFFIXES = (".csv", ".json")


@dataclass
class ExportConfig:
    game: str = "bricks"  # a game from `pocketworld games`
    agent: str = "scripted"  # who plays: scripted, held, random or rl
    frames: int = 10 * 60 * FPS  # frames to record (10 minutes at 30 FPS)
    split: str | None = "train"  # play only levels of this split (train/val/test); None: every level
    seed: int = 0  # first level seed; later levels take the next seeds of the split
    max_steps: int = 1800  # a level's time limit in frames, as in `collect`
    tileset: str | None = None  # tileset JSON for our games' art

    def __post_init__(self):
        if self.frames <= 0 or self.max_steps <= 0:
            raise ValueError(f"frames and max_steps must be positive, got {self.frames} and {self.max_steps}")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")
        if self.split not in (None, "train", "val", "test"):
            raise ValueError(f"unknown split {self.split!r}; valid splits: train, val, test")


def export_play(config: ExportConfig, video: str | Path, keys: str | Path, progress: bool = True) -> dict:
    """Play `config.game` with `config.agent` into `video` (.mp4/.webm) and `keys` (.csv/.json); returns a
    summary (frames, levels and their seeds, outcomes, bytes, seconds)."""
    from core.agents import make_agent
    from core.games import make_game
    from finetune.action_log import format_action_log

    video, keys = Path(video), Path(keys)
    if video.suffix.lower() not in FORMATS:
        raise ValueError(f"the video is written as {' or '.join(FORMATS)}, got {video.name!r}")
    if keys.suffix.lower() not in KEY_SUFFIXES:
        raise ValueError(f"the key log is written as .csv (frame,keys) or .json, got {keys.name!r}")
    for path in (video, keys):
        if path.exists():
            raise FileExistsError(f"{path} already exists; a recording is never overwritten: choose another name")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"no folder {path.parent} to write {path.name} into")
    options = {"max_steps": config.max_steps, **({"tileset": config.tileset} if config.tileset else {})}
    game = make_game(config.game, num_envs=1, **options)
    agent = make_agent(config.agent, game, seed=config.seed)
    actions: list[int] = []  # filled in as the frames are played and encoded
    seeds: list[int] = []
    outcomes: dict[str, int] = {}
    start = time.perf_counter()
    frames = _play(game, agent, config, actions, seeds, outcomes, progress)
    atomic_write(video, lambda temporary: write_video(temporary, frames, FPS, suffix=video.suffix))
    text = format_action_log(actions, keys.name, fps=FPS)
    atomic_write(keys, lambda temporary: Path(temporary).write_text(text))
    seconds = time.perf_counter() - start
    return {
        "game": config.game,
        "agent": config.agent,
        "frames": len(actions),
        "minutes": round(len(actions) / FPS / 60, 2),
        "split": config.split,
        "levels": len(seeds),
        "seeds": seeds,
        "levels_ended": outcomes,
        "video": str(video),
        "video_bytes": video.stat().st_size,
        "keys": str(keys),
        "seconds": round(seconds, 2),
        "frames_per_second": round(len(actions) / max(seconds, 1e-9), 1),
    }


def _play(game, agent, config: ExportConfig, actions: list, seeds: list, outcomes: dict, progress: bool):
    """Yield config.frames frames (256, 256, 3) of play, appending the action held at each one to `actions`,
    each level's seed to `seeds` and how each level ended to `outcomes`."""
    from tqdm.auto import tqdm

    levels = _seeds(config.seed, config.split)
    seeds.append(next(levels))
    frame = game.reset(seeds[-1:])[0]
    agent.reset([0])
    for _ in tqdm(range(config.frames), unit="frame", desc=f"record {config.game}", disable=not progress):
        yield frame
        action = agent.act(game)
        actions.append(int(action[0]))
        frames, done = game.step(action)
        frame = frames[0]
        if done[0]:
            outcome = "won" if game.won[0] else "timeout" if game.t[0] >= game.config.max_steps else "lost"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            seeds.append(next(levels))
            frame = game.reset(seeds[-1:])[0]
            agent.reset([0])


def _seeds(first: int, split: str | None) -> Iterator[int]:
    """Level seeds from `first` on, those of `split` only (core.data.shards.split_of) when one is given."""
    seed = first
    while True:
        if split is None or split_of(seed) == split:
            yield seed
        seed += 1
