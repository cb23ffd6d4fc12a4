"""Record play into shards: agents play a game, the filter cleans it, chunks go to WebDataset shards.

Each env's frames, actions and ground-truth states are buffered as state-action-next_state
triplets and flushed through the quality filter into samples of `chunk` frames. Only decided
frames are flushed (a trailing run of identical frames may still turn into a stuck stretch, and
a spike check needs the next frame), so the filter sees the same stream a whole-episode pass
would. `collect.json` in the output folder records where the collection stands each time a
shard completes, so `--resume` continues a killed run with new level seeds and never rewrites
or duplicates a finished shard.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.actions import NOOP, NUM_ACTIONS
from core.data.quality import OK, QualityConfig, QualityReport, label_frames, segments
from core.data.shards import DATA_VERSION, SPLITS, Sample, ShardWriter, split_of
from core.games.base import FPS

STATE_FILE = "collect.json"
REPORT_FILE = "report.json"


@dataclass
class CollectConfig:
    game: str  # a name from `pocketworld games`
    agent: str = "random"  # random, scripted or rl
    frames: int = 10_000  # frames to write (after filtering): exactly this many, the last sample cut short
    seed: int = 0  # first level seed; later episodes take the next seeds
    num_envs: int = 8  # games played side by side
    chunk: int = 128  # frames per shard sample
    split: str | None = None  # keep to levels of one split (train/val/test); None: all
    shard_mb: int = 256  # shard size before starting the next
    tileset: str | None = None  # tileset JSON for our games' art
    max_steps: int = 1800  # episode time limit in frames
    policy: str | None = None  # RL agent: a saved policy (else one is trained and saved)
    rl_steps: int = 200_000  # RL agent: training steps when no policy is given
    quality: QualityConfig = field(default_factory=QualityConfig)

    def __post_init__(self):
        for name in ("frames", "num_envs", "chunk", "shard_mb", "max_steps", "rl_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; valid splits: {', '.join(SPLITS)}")
        if self.chunk < self.quality.min_segment:
            raise ValueError(
                f"chunk ({self.chunk}) must be at least the filter's min_segment ({self.quality.min_segment})"
            )
        if isinstance(self.quality, dict):
            self.quality = QualityConfig(**self.quality)

    def identity(self) -> dict:
        """The settings a resumed run must share with the run it continues."""
        return {k: v for k, v in asdict(self).items() if k not in ("frames", "num_envs", "shard_mb")}


@dataclass
class Episode:
    """One env's unflushed play: frames[k] was seen after states[k]; actions[k] was pressed at frames[k]."""

    seed: int
    start: int  # episode frame index of frames[0]
    frames: list = field(default_factory=list)
    states: list = field(default_factory=list)
    actions: list = field(default_factory=list)


class Collector:
    """Plays `config.game` with `config.agent` and writes filtered shards into `out`."""

    def __init__(self, config: CollectConfig, out: str | Path, resume: bool = False, progress: bool = True):
        self.config, self.out, self.progress = config, Path(out), progress
        self.report = QualityReport()
        self.next_seed, self.written, self.shard_index = config.seed, 0, 0
        self.outcomes: dict[str, int] = {}
        self.action_counts = np.zeros(NUM_ACTIONS, dtype=np.int64)
        self.coverage: list[int] = []
        self._prepare_folder(resume)

    def _prepare_folder(self, resume: bool) -> None:
        state_path = self.out / STATE_FILE
        if self.out.exists() and not self.out.is_dir():
            raise FileExistsError(f"{self.out} is a file, not a folder for shards")
        existing = [p for p in self.out.iterdir()] if self.out.is_dir() else []
        if existing and not resume:
            raise FileExistsError(
                f"{self.out} is not empty ({len(existing)} entries); pass --resume to continue "
                f"the collection there, or choose a new folder (shards are never overwritten)"
            )
        if resume and existing:
            if not state_path.is_file():
                raise FileNotFoundError(
                    f"cannot resume: {state_path} is missing, so {self.out} was not made by `pocketworld collect`"
                )
            saved = json.loads(state_path.read_text())
            mismatched = {
                k: (saved["config"].get(k), v) for k, v in self.config.identity().items() if saved["config"].get(k) != v
            }
            if mismatched:
                details = ", ".join(f"{k}: was {old!r}, now {new!r}" for k, (old, new) in mismatched.items())
                raise ValueError(f"cannot resume {self.out} with different settings ({details})")
            for partial in self.out.glob("*.partial"):
                partial.unlink()  # the shard a killed run was writing: its episodes are replayed below
            self.next_seed, self.written, self.shard_index = saved["next_seed"], saved["written"], saved["shards"]
            self.report = QualityReport.from_dict(saved["quality"])
            self.outcomes = saved["outcomes"]
            self.action_counts = np.asarray(saved["actions"], dtype=np.int64)
            self.coverage = saved["coverage"]
        self.resumed_from = self.written  # frames already in the folder from an earlier run
        self.out.mkdir(parents=True, exist_ok=True)
        probe = self.out / ".write-test"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise ValueError(f"cannot write to {self.out}: {err.strerror}") from None

    def _take_seed(self) -> int:
        while self.config.split and split_of(self.next_seed) != self.config.split:
            self.next_seed += 1
        self.next_seed += 1
        return self.next_seed - 1

    def run(self) -> dict:
        from tqdm.auto import tqdm

        from core.agents import make_agent
        from core.games import make_game

        cfg = self.config
        options = {"max_steps": cfg.max_steps, **({"tileset": cfg.tileset} if cfg.tileset else {})}
        game = make_game(cfg.game, num_envs=cfg.num_envs, **options)
        agent = make_agent(cfg.agent, game, seed=cfg.seed, policy=cfg.policy, rl_steps=cfg.rl_steps)
        if cfg.agent == "rl" and not cfg.policy:
            agent.save(self.out / "rl_policy.pt")
        self.unseen = getattr(game, "unseen", False)  # an Atari game outside the training list
        self.writer = ShardWriter(
            self.out, start_index=self.shard_index, max_bytes=cfg.shard_mb * 2**20, on_close=self._save_state
        )
        seeds = [self._take_seed() for _ in range(game.num_envs)]
        frames = game.reset(seeds)
        self.layout = game.state_layout()  # after a reset: adapters learn their state's shape from it
        state = game.state_vector()
        episodes = [Episode(seed, 0, [frames[i]], [state[i]]) for i, seed in enumerate(seeds)]
        visited = [{int(r)} for r in game.region()]
        start, bar = (
            time.perf_counter(),
            tqdm(
                total=cfg.frames,
                initial=min(self.written, cfg.frames),
                unit="frame",
                desc=f"{cfg.game}/{cfg.agent}",
                disable=not self.progress,
            ),
        )
        while self.written < cfg.frames:
            actions = agent.act(game)
            self.action_counts += np.bincount(actions, minlength=NUM_ACTIONS)
            frames, done = game.step(actions)
            state = game.state_vector()
            for i, episode in enumerate(episodes):
                episode.actions.append(int(actions[i]))
                episode.frames.append(frames[i])
                episode.states.append(state[i])
            for i, region in enumerate(game.region().tolist()):
                visited[i].add(region)
            before = self.written
            for i in np.flatnonzero(done):
                outcome = "won" if game.won[i] else "timeout" if game.t[i] >= game.config.max_steps else "ended"
                self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
                self.coverage.append(len(visited[i]))
                self._flush(episodes[i], final=True)
                seed = self._take_seed()
                first = game.reset([seed], [i])
                episodes[i] = Episode(seed, 0, [first[0]], [game.state_vector()[i]])
                visited[i] = {int(game.region()[i])}
                agent.reset([i])
            for episode in episodes:
                if len(episode.frames) >= 2 * cfg.chunk:
                    self._flush(episode, final=False)
            bar.update(min(self.written, cfg.frames) - min(before, cfg.frames))
        self.writer.close()  # episodes still in play are left out: the target is reached
        bar.close()
        summary = self._summary(time.perf_counter() - start)
        (self.out / REPORT_FILE).write_text(json.dumps(summary, indent=2))
        return summary

    def _flush(self, episode: Episode, final: bool) -> None:
        """Filter the episode's buffered frames and write every decided, kept chunk."""
        cfg = self.config
        frames, states = np.stack(episode.frames), np.stack(episode.states)
        labels = label_frames(frames, self._positions(states), cfg.quality, open_end=not final)
        count = len(frames)
        if final:
            decided = count
            actions = np.array(episode.actions + [NOOP] * (count - len(episode.actions)), dtype=np.uint8)
        else:
            decided = count - 1  # the newest frame has no successor to check against yet
            while decided > 0 and np.array_equal(frames[decided], frames[decided - 1]):
                decided -= 1  # a trailing run of identical frames may still become "stuck"
            if count - decided > cfg.quality.stuck_frames:
                decided = count - 1  # ...unless it is already long enough to be stuck
            actions = np.array(episode.actions, dtype=np.uint8)
        for start, stop in segments(labels[:decided]):
            open_segment = not final and stop == decided and labels[decided] == OK
            if open_segment:  # continues into unflushed frames: write whole chunks only
                stop = start + (stop - start) // cfg.chunk * cfg.chunk
                decided = stop
            pieces = max(1, (stop - start) // cfg.chunk)
            for piece in np.array_split(np.arange(start, stop), pieces):
                if len(piece) == 0:
                    continue
                self._write(
                    episode,
                    frames[piece],
                    actions[piece],
                    states[piece],
                    piece[0],
                    ends=final and piece[-1] == count - 1,
                )
        self.report.add(labels[:decided])
        episode.start += decided
        del episode.frames[:decided], episode.states[:decided], episode.actions[:decided]

    def _positions(self, states: np.ndarray) -> np.ndarray | None:
        """The player's whole-pixel position per frame, when the game reports one (for duplicate checks)."""
        if "player_pos" not in self.layout:
            return None
        start, stop = self.layout["player_pos"][:2]
        return np.floor(states[:, start:stop])

    def _write(self, episode: Episode, frames, actions, states, offset: int, ends: bool) -> None:
        room = self.config.frames - self.written
        if room <= 0:
            return
        if len(frames) > room:  # the last sample is cut so a run writes exactly the frames asked for
            frames, actions, states, ends = frames[:room], actions[:room], states[:room], False
        meta = {
            "game": self.config.game,
            "seed": episode.seed,
            "agent": self.config.agent,
            "fps": FPS,
            "version": DATA_VERSION,
            "split": "unseen" if self.unseen else split_of(episode.seed),
            "start_frame": episode.start + int(offset),
            "num_frames": len(frames),
            "ends_episode": bool(ends),
            "state_layout": self.layout,
            "tileset": Path(self.config.tileset).name if self.config.tileset else None,
        }
        self.writer.write(Sample(frames, actions, states, meta))
        self.written += len(frames)

    def _save_state(self, shard: Path) -> None:
        state = {
            "config": self.config.identity(),
            "next_seed": self.next_seed,
            "written": self.written,
            "shards": self.writer.index,
            "quality": self.report.to_dict(),
            "outcomes": self.outcomes,
            "actions": self.action_counts.tolist(),
            "coverage": self.coverage,
        }
        temporary = self.out / (STATE_FILE + ".partial")
        temporary.write_text(json.dumps(state, indent=1, default=str))
        os.replace(temporary, self.out / STATE_FILE)

    def _summary(self, seconds: float) -> dict:
        shards = sorted(self.out.glob("*.tar"))
        size = sum(p.stat().st_size for p in shards)
        histogram = self.action_counts / max(self.action_counts.sum(), 1)
        return {
            "game": self.config.game,
            "agent": self.config.agent,
            "frames_written": self.written,
            "shards": len(shards),
            "bytes": size,
            "bytes_per_frame": size / max(self.written, 1),
            "seconds": round(seconds, 2),
            "frames_this_run": self.written - self.resumed_from,
            "frames_per_second": (self.written - self.resumed_from) / max(seconds, 1e-9),
            "episodes": self.outcomes,
            "coverage_mean": float(np.mean(self.coverage)) if self.coverage else None,
            "action_histogram": [round(float(p), 4) for p in histogram],
            "quality": self.report.to_dict(),
        }
