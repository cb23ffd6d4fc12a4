"""The controllability lab: train a named arm for a fixed time budget and measure how well it follows
the keys, so that design choices are made by measurement (`pocketworld bench control`).

Every arm trains on the same recorded play (core/control/data.py) for the same CPU-minutes of
training (the process's CPU time, all threads counted, so that other work on the machine slows
an arm down without shortening its budget; the clock stops while it is scored), and is scored
every `eval_every` CPU-minutes by core/control/scores.py on the same held-out clips. The run writes
metrics.jsonl (one line per scoring), results.json (the last scoring, the arm's config, speed)
and curves.png (each metric against training minutes). The baseline arm `nano` is not
trained: it scores the shipped nano (whichever version zoo/nano holds; its card gives its training cost).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from core.atomic import atomic_write
from core.config import FrameDynamicsConfig
from core.control.data import GAMES, LabDataConfig, ensure_data, load_play
from core.control.scores import ClipSet, score_clips, shuffled, summarise, visible_labels
from core.frame_dynamics import FrameDynamics, recent_actions, unrolled_loss


@dataclass
class ArmConfig:
    description: str  # what the arm tests, in one line
    predictor: FrameDynamicsConfig = field(default_factory=FrameDynamicsConfig)
    policy: str = "held"  # training play: held (random keys held 1-8 frames) or scripted
    batch: int = 16  # clips per step
    lr: float = 1e-3  # AdamW peak rate; cosine-decayed over the time budget
    unroll: int = 1  # predicted frames per clip, each fed back as context (1 = teacher forcing)
    context_noise: float = 0.0  # max std of Gaussian noise on context frames (drawn per clip)


ARMS: dict[str, ArmConfig] = {
    "film": ArmConfig("64x64 pixels, last 2 frames, keys FiLM'd into every block (zero-init)"),
    "input": ArmConfig(
        "as film, but the keys are added to the first features only", FrameDynamicsConfig(action_mode="input")
    ),
    "film-128": ArmConfig(
        "as film at 128x128 internal resolution", FrameDynamicsConfig(resolution=128, channels=(24, 48, 96, 128))
    ),
    "film-scripted": ArmConfig("as film, trained on scripted play instead of held random keys", policy="scripted"),
    "film-unroll": ArmConfig(
        "as film, plus noisy context (sigma <= 0.03) and a 3-step loss on its own predictions",
        unroll=3,
        context_noise=0.03,
    ),
}
BASELINE = "nano"
MODEL_PREFIX = "model:"  # an arm "model:FOLDER" scores a trained WorldModel folder without training it


@dataclass
class LabConfig:
    minutes: float = 10.0  # training budget in CPU-minutes of this process (scoring excluded)
    eval_every: float = 2.5  # CPU-minutes of training between scorings
    threads: int = 2  # torch threads for training and scoring
    clips: int = 24  # held-out clips per game
    horizon: int = 16  # steps scored per clip
    seed: int = 0
    idm_steps: int = 1500  # training steps of each game's IDM (made once, cached beside the data)
    data: LabDataConfig = field(default_factory=LabDataConfig)


def test_clips(config: LabConfig, game: str, context: int, keep_full: bool = False) -> ClipSet:
    """`config.clips` non-overlapping held-out clips of one game, spread over its test episodes."""
    length = context + config.horizon
    frames, actions, labels, full = [], [], [], []
    for episode in load_play(config.data, game, "held", "test", keep_full=keep_full):
        source = episode.source
        layout = source.meta.get("state_layout", {})
        for start in range(0, len(episode.actions) - length, length):
            window = slice(start, start + length)
            frames.append(episode.frames[window])
            actions.append(episode.actions[window])
            steps = slice(start + context - 1, start + length)
            labels.append(visible_labels(game, source.actions[steps], source.state[steps], layout))
            if keep_full:
                full.append(source.frames[window])
    if len(frames) < config.clips:
        raise ValueError(f"{game}: only {len(frames)} held-out clips of {length} frames; record more test play")
    pick = np.linspace(0, len(frames) - 1, config.clips).round().astype(int)
    return ClipSet(
        game,
        context,
        torch.stack([frames[i] for i in pick]).float(),
        torch.stack([actions[i] for i in pick]),
        np.stack([labels[i] for i in pick]),
        np.stack([full[i] for i in pick]) if keep_full else None,
    )


def game_idm(config: LabConfig, game: str, progress: bool = True):
    """The lab's IDM for `game` at 64x64, trained once on the held training play and cached."""
    from core.evaluation.episodes import Episode
    from core.evaluation.idm import IDMConfig, load_idm, save_idm
    from core.evaluation.idm_train import IDMTrainConfig, fit_idm
    from core.frames import to_uint8

    folder = Path(config.data.root) / f"idm-{game}"
    if (folder / "idm.json").is_file():
        return load_idm(folder)[0]

    def small(episodes):
        return [Episode(to_uint8(e.frames.float()), e.source.actions, e.source.state, e.source.meta) for e in episodes]

    data = replace(config.data, resolution=64)
    model, info = fit_idm(
        small(load_play(data, game, "held", "train")),
        small(load_play(data, game, "held", "test")),
        config=IDMTrainConfig(steps=config.idm_steps),
        idm_config=IDMConfig(game=game, image_size=64, pool=1),
        progress=progress,
    )
    save_idm(model, folder, info)
    return model


class Batches:
    """Random clips of `length` frames from the training play of every game, at the arm's resolution."""

    def __init__(self, episodes, length: int, batch: int, seed: int):
        self.episodes = [e for e in episodes if len(e.actions) > length]
        weights = np.array([len(e.actions) - length for e in self.episodes], np.float64)
        self.p, self.length, self.batch = weights / weights.sum(), length, batch
        self.rng = np.random.default_rng(seed)

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        frames, actions = [], []
        for i in self.rng.choice(len(self.episodes), self.batch, p=self.p):
            episode = self.episodes[i]
            start = int(self.rng.integers(0, len(episode.actions) - self.length))
            frames.append(episode.frames[start : start + self.length])
            actions.append(episode.actions[start : start + self.length])
        return torch.stack(frames).float(), torch.stack(actions)  # (B, L, 3, r, r), (B, L)


@torch.inference_mode()
def predictor_frames(model: FrameDynamics, clips: ClipSet, actions: torch.Tensor, forced: bool) -> torch.Tensor:
    """Frames C..C+H-1 of each clip under `actions`: teacher-forced (real context each step: the clip
    forward) or rolled out (its own frames fed back) -> (N, H, 3, r, r)."""
    c, k = model.config.context, model.config.action_context
    if forced:
        return model(clips.frames[:, :-1], actions[:, :-1])[:, c - 1 :]
    context, out = clips.frames[:, :c], []
    for h in range(clips.horizon):
        out.append(model.predict(context, recent_actions(actions, c - 1 + h, k)))
        context = torch.cat([context[:, 1:], out[-1][:, None]], dim=1)
    return torch.stack(out, 1)


def score_predictor(model: FrameDynamics, clip_sets: list[ClipSet], idms: dict) -> dict:
    model.eval()
    per_game = {}
    for clips in clip_sets:
        mixed = shuffled(clips.actions)
        per_game[clips.game] = score_clips(
            clips,
            predictor_frames(model, clips, clips.actions, True),
            predictor_frames(model, clips, mixed, True),
            predictor_frames(model, clips, clips.actions, False),
            predictor_frames(model, clips, mixed, False),
            idms.get(clips.game),
        )
    model.train()
    return {"mean": summarise(per_game), "games": per_game}


def play_fps(model, steps: int = 30) -> float:
    """Frames/s of one play step (batch 1) at the current thread count."""
    c, r = model.config.context, model.config.resolution
    context, recent = torch.zeros(1, c, 3, r, r), torch.zeros(1, model.config.action_context, dtype=torch.long)
    with torch.inference_mode():
        for _ in range(3):
            model.predict(context, recent)
        start = time.perf_counter()
        for _ in range(steps):
            model.predict(context, recent)
    return steps / (time.perf_counter() - start)


def run_arm(name: str, out: str | Path, config: LabConfig, games=GAMES, progress: bool = True) -> dict:
    """Train arm `name` for config.minutes, scoring it every config.eval_every minutes; returns results."""
    if name == BASELINE:
        from core.control.baseline import score_nano

        return _finish(Path(out), name, config, [score_nano(config, games, progress)], None, {})
    if name.startswith(MODEL_PREFIX):
        from core.control.baseline import score_model
        from core.world_model import WorldModel

        model = WorldModel.from_pretrained(name[len(MODEL_PREFIX) :])
        return _finish(
            Path(out),
            name,
            config,
            [score_model(model, config, games, name, progress)],
            None,
            {"parameters": model.parameter_counts()["total"]},
        )
    if name not in ARMS:
        raise ValueError(f"unknown arm {name!r}; arms: {', '.join([BASELINE, *ARMS])}")
    arm = ARMS[name]
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    ensure_data(config.data, games, policies=(arm.policy,), progress=progress)
    idms = {game: game_idm(config, game, progress) for game in games}
    data = replace(config.data, resolution=arm.predictor.resolution)
    clip_sets = [test_clips(replace(config, data=data), game, arm.predictor.context) for game in games]
    episodes = [e for game in games for e in load_play(data, game, arm.policy, "train")]
    batches = Batches(episodes, arm.predictor.context + arm.unroll, arm.batch, config.seed)
    model = FrameDynamics(arm.predictor)
    optimiser = torch.optim.AdamW(model.parameters(), lr=arm.lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(config.seed)
    budget, trained, wall, step, views = config.minutes * 60, 0.0, 0.0, 0, 0
    rows, next_eval = [], config.eval_every * 60
    bar = tqdm(total=round(budget), unit="cpu-s", desc=f"arm {name}", disable=not progress)
    while trained < budget:
        started, started_wall = time.process_time(), time.perf_counter()
        fraction = trained / budget
        for group in optimiser.param_groups:  # warm up, then cosine over the time budget (not a step count)
            group["lr"] = arm.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * fraction))
        frames, actions = next(batches)
        loss = unrolled_loss(model, frames, actions, arm.unroll, arm.context_noise, generator)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        step, views = step + 1, views + arm.batch * arm.unroll
        trained += time.process_time() - started
        wall += time.perf_counter() - started_wall
        bar.update(round(trained) - bar.n)
        bar.set_postfix(loss=f"{loss.item():.5f}")
        if trained >= next_eval or trained >= budget:
            scores = score_predictor(model, clip_sets, idms)
            rows.append(
                {
                    "minutes": round(trained / 60, 3),
                    "wall_minutes": round(wall / 60, 3),
                    "step": step,
                    "frame_views": views,
                    "train_frames_per_cpu_second": round(views / trained, 1),
                    "train_frames_per_second": round(views / wall, 1),
                    "loss": round(loss.item(), 6),
                    **scores,
                }
            )
            _write_rows(Path(out), rows)
            next_eval += config.eval_every * 60
    bar.close()
    fps = play_fps(model)
    return _finish(
        Path(out),
        name,
        config,
        rows,
        model,
        {"play_fps": round(fps, 1), "parameters": sum(p.numel() for p in model.parameters())},
    )


def _write_rows(out: Path, rows: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row) + "\n" for row in rows)
    atomic_write(out / "metrics.jsonl", lambda path: Path(path).write_text(text))


def _finish(out: Path, name: str, config: LabConfig, rows: list[dict], model, extra: dict) -> dict:
    from core.control.plot import plot_rows

    _write_rows(out, rows)
    if name in ARMS:
        arm = asdict(ARMS[name])
    elif name.startswith(MODEL_PREFIX):
        arm = {"description": f"the model in {name[len(MODEL_PREFIX) :]}, not retrained"}
    else:
        arm = {"description": "the shipped nano (zoo/nano), not retrained"}
    results = {"arm": name, "config": arm, "lab": asdict(config), "threads": config.threads, "last": rows[-1], **extra}
    atomic_write(out / "results.json", lambda path: Path(path).write_text(json.dumps(results, indent=2)))
    if model is not None:
        from safetensors.torch import save_file

        atomic_write(
            out / "model.safetensors",
            lambda path: save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path),
        )
    plot_rows(rows, out / "curves.png", title=f"bench control: {name}")
    return results
