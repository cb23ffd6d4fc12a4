"""Distillation: a teacher world model trains a student (e.g. base -> nano).

Two routes, following knowledge distillation (Hinton et al. 2015) and FitNets' hint loss
(Romero et al. 2015):
  * a PocketWorld teacher sharing the student's token vocabulary: the student's dynamics is
    trained on token clips with cross-entropy to the recorded tokens + KL(teacher || student)
    on the temperature-softened token logits + MSE between the student's final hidden
    features, linearly projected to the teacher's width, and the teacher's. The teacher is
    frozen and never receives gradients (`DistillObjective`).
  * a frame teacher: any callable (first frame (H, W, 3) uint8, actions (T,)) -> frames
    (T+1, H, W, 3) uint8 — a PocketWorld session (`session_teacher`) or a large external video
    world model wrapped the same way on a GPU machine. Its rollouts are recorded as ordinary
    gameplay shards (`record_teacher_rollouts`), which every training stage then reads.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from core.actions import NOOP, NUM_ACTIONS
from core.dynamics import Dynamics
from core.train.config import DistillSection  # the distill stage's section is the loss's config: one dataclass

FrameTeacher = Callable[[np.ndarray, np.ndarray], np.ndarray]


def logit_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over positions of KL(softmax(teacher/T) || softmax(student/T)) x T^2; logits (..., V)."""
    teacher_logp = F.log_softmax(teacher.float() / temperature, dim=-1).flatten(0, -2)
    student_logp = F.log_softmax(student.float() / temperature, dim=-1).flatten(0, -2)
    return F.kl_div(student_logp, teacher_logp, log_target=True, reduction="batchmean") * temperature**2


@contextmanager
def hidden_features(dynamics: Dynamics):
    """Capture the dynamics' final normalised hidden features (B, T, S, D) of the next forward."""
    captured: list[torch.Tensor] = []
    handle = dynamics.out_norm.register_forward_hook(lambda module, args, output: captured.append(output))
    try:
        yield captured
    finally:
        handle.remove()


class DistillObjective(nn.Module):
    """forward(batch of token clips) -> (loss, metrics); only the student and projection train."""

    def __init__(self, student: Dynamics, teacher: Dynamics, config: DistillSection):
        super().__init__()
        s, t = student.config, teacher.config
        for name in ("vocab_size", "tokens_per_frame", "num_actions"):
            if getattr(s, name) != getattr(t, name):
                raise ValueError(
                    f"teacher and student disagree on {name} ({getattr(t, name)} vs {getattr(s, name)}): "
                    "a PocketWorld teacher must share the student's tokens"
                )
        self.student = student
        self.projection = nn.Linear(s.d_model, t.d_model, bias=False)  # FitNets regressor: student width -> teacher's
        self.frozen = {"teacher": teacher.eval().requires_grad_(False)}  # a dict: not a submodule, never trained
        self.config = config

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        tokens, actions = batch["tokens"][:, :-1], batch["actions"][:, :-1]  # (B, T-1, S), (B, T-1)
        target = batch["tokens"][:, 1:]
        with hidden_features(self.student) as student_features:
            student_logits = self.student(tokens, actions)  # (B, T-1, S, V)
        with torch.no_grad(), hidden_features(self.frozen["teacher"]) as teacher_features:
            teacher_logits = self.frozen["teacher"](tokens, actions)
        c = self.config
        label = F.cross_entropy(student_logits.flatten(0, 2).float(), target.flatten())
        kl = logit_kl(student_logits, teacher_logits, c.temperature)
        feature = F.mse_loss(self.projection(student_features[0]), teacher_features[0])
        loss = c.label_weight * label + c.logit_weight * kl + c.feature_weight * feature
        accuracy = (student_logits.detach().argmax(-1) == target).float().mean()
        return loss, {
            "loss": loss.detach(),
            "label_loss": label.detach(),
            "kl": kl.detach(),
            "feature_mse": feature.detach(),
            "accuracy": accuracy,
        }


def session_teacher(model, temperature: float = 0.0) -> FrameTeacher:
    """A PocketWorld model as a frame teacher: it dreams the frames that follow `actions`."""
    from core.session import SamplingConfig, WorldSession

    def teach(first_frame: np.ndarray, actions: np.ndarray) -> np.ndarray:
        session = WorldSession(model, SamplingConfig(temperature=temperature))
        frames = [session.reset(first_frame)]
        frames += [session.step(int(a)) for a in actions]
        return np.stack(frames)

    return teach


def random_actions(length: int, rng: np.random.Generator, repeat: int = 4) -> np.ndarray:
    """(length,) action ids, each held for `repeat` frames (players press keys for a while)."""
    return np.repeat(rng.integers(0, NUM_ACTIONS, -(-length // repeat)), repeat)[:length]


def record_teacher_rollouts(
    teacher: FrameTeacher,
    out: str | Path,
    *,
    name: str,
    seeds: list[int],
    frames: int = 128,
    game: str = "platformer",
    action_seed: int = 0,
    shard_mb: int = 256,
    progress: bool = True,
) -> dict:
    """Roll the frame teacher out from the first frame of each level seed of `game` under random
    actions and write the rollouts as gameplay shards in `out` (one sample per seed)."""
    from core.data.shards import DATA_VERSION, Sample, ShardWriter, split_of
    from core.frames import check_frame
    from core.games import first_frame

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose a new folder for the teacher's rollouts")
    if frames < 2 or not seeds:
        raise ValueError("record at least 2 frames from at least one level seed")
    rng = np.random.default_rng(action_seed)
    writer = ShardWriter(out, max_bytes=shard_mb * 2**20)
    for seed in tqdm(seeds, desc=f"teacher {name}", unit="rollout", disable=not progress):
        start = first_frame(game, seed)
        actions = random_actions(frames - 1, rng)
        rollout = np.asarray(teacher(start, actions))
        if rollout.shape != (frames, *start.shape) or rollout.dtype != np.uint8:
            raise ValueError(
                f"frame teacher {name!r} returned {rollout.dtype} {rollout.shape}; a frame teacher "
                f"maps (first frame, {frames - 1} actions) to uint8 frames {(frames, *start.shape)}"
            )
        check_frame(rollout[0])
        meta = {
            "game": f"teacher:{name}",
            "seed": int(seed),
            "agent": "random",
            "fps": 30,
            "version": DATA_VERSION,
            "split": split_of(int(seed)),
            "start_frame": 0,
            "num_frames": frames,
            "ends_episode": True,
            "state_layout": [],
            "teacher": name,
            "source_game": game,
        }
        writer.write(
            Sample(rollout, np.append(actions, NOOP).astype(np.uint8), np.zeros((frames, 0), np.float32), meta)
        )
    writer.close()
    return {"out": str(out), "rollouts": len(seeds), "frames": len(seeds) * frames}
