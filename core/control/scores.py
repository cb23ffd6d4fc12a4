"""How much a model's frames answer the keys, measured the same way for every lab arm.

On held-out clips (C context frames, then H steps), a model is asked for the next frames
twice: under the clip's own keys and under another clip's keys (a roll over the clips, so
both are real play). From those:
- teacher-forced MSE with true and with shuffled keys, and their gap (zero = keys ignored),
  beside the MSE of repeating the last frame;
- changed-pixel accuracy: of the pixels that change from frame t to t+1, the share the
  teacher-forced prediction gets within 0.1 (of the [-1, 1] range);
- delta-PSNR on the changed region at steps 1, 4, 16 of a free rollout (Genie's
  controllability, restricted to where the real frame moved away from the start, so a
  static background does not drown the signal);
- IDM action accuracy: an inverse-dynamics model trained on real play of that game reads
  the key back from each generated transition, scored against the visible part of the key.
All frames are scored at the lab's 64x64, whatever size a model works at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.evaluation.effects import visible_actions
from core.evaluation.idm import score as idm_score
from core.frames import to_uint8

CONTROL_STEPS = (1, 4, 16)
CHANGE = 0.1  # a pixel channel moving more than this (of [-1, 1]) counts as changed
SCORE_SIZE = 64


@dataclass
class ClipSet:
    """Held-out clips of one game: frames (N, C+H, 3, r, r) in [-1, 1] at the model's resolution (scored at
    64x64), actions (N, C+H), visible
    key labels (N, H) for the H predicted transitions, and the clips' full-size frames when kept."""

    game: str
    context: int
    frames: torch.Tensor
    actions: torch.Tensor
    labels: np.ndarray
    full: np.ndarray | None = None  # (N, C+H, 256, 256, 3) uint8

    @property
    def horizon(self) -> int:
        return self.frames.shape[1] - self.context


def shuffled(actions: torch.Tensor) -> torch.Tensor:
    """Each clip gets the next clip's keys (real play, not its own)."""
    return actions.roll(1, dims=0)


def to_score_size(frames: torch.Tensor) -> torch.Tensor:
    """(..., 3, r, r) -> (..., 3, 64, 64), area-pooled."""
    if frames.shape[-1] == SCORE_SIZE:
        return frames.float()
    lead = frames.shape[:-3]
    pooled = F.interpolate(frames.reshape(-1, *frames.shape[-3:]).float(), size=(SCORE_SIZE, SCORE_SIZE), mode="area")
    return pooled.view(*lead, 3, SCORE_SIZE, SCORE_SIZE)


def _psnr(error: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR (dB, range [-1, 1]) of squared errors over the masked pixels; nan when none."""
    count = mask.sum().item()
    if count == 0:
        return float("nan")
    mse = (error * mask).sum().item() / count
    return 10 * math.log10(4.0 / max(mse, 1e-12))


def score_clips(
    clips: ClipSet,
    forced_true: torch.Tensor,
    forced_shuffled: torch.Tensor,
    rolled_true: torch.Tensor,
    rolled_shuffled: torch.Tensor,
    idm=None,
) -> dict:
    """Each prediction (N, H, 3, r, r) for frames C..C+H-1 of the clips -> the metrics of one game."""
    c = clips.context
    frames = to_score_size(clips.frames)  # (N, C+H, 3, 64, 64)
    real = frames[:, c:]  # (N, H, 3, 64, 64)
    previous = frames[:, c - 1 : -1]
    forced_true, forced_shuffled = to_score_size(forced_true), to_score_size(forced_shuffled)
    rolled_true, rolled_shuffled = to_score_size(rolled_true), to_score_size(rolled_shuffled)
    mse = lambda a, b: (a - b).pow(2).mean().item()  # noqa: E731
    out = {
        "mse_true": mse(forced_true, real),
        "mse_shuffled": mse(forced_shuffled, real),
        "mse_copy_last": mse(previous, real),
    }
    out["action_gap"] = out["mse_shuffled"] - out["mse_true"]
    out["action_gap_relative"] = out["action_gap"] / max(out["mse_true"], 1e-12)
    changed = (real - previous).abs() > CHANGE
    out["changed_accuracy"] = (((forced_true - real).abs() < CHANGE) & changed).sum().item() / max(
        changed.sum().item(), 1
    )
    start = frames[:, c - 1 : c]
    moved = ((real - start).abs().amax(2, keepdim=True) > CHANGE).expand_as(real)  # (N, H, 3, 64, 64)
    for step in CONTROL_STEPS:
        if step > clips.horizon:
            continue
        t = step - 1
        true_psnr = _psnr((rolled_true[:, t] - real[:, t]).pow(2), moved[:, t])
        shuffled_psnr = _psnr((rolled_shuffled[:, t] - real[:, t]).pow(2), moved[:, t])
        out[f"delta_psnr_t{step}"] = true_psnr - shuffled_psnr
        out[f"rollout_psnr_t{step}"] = 10 * math.log10(4.0 / max(mse(rolled_true[:, t], real[:, t]), 1e-12))
    if idm is not None:
        before = torch.cat([start, rolled_true[:, :-1]], dim=1)  # generated t -> t+1 pairs
        predicted, _ = idm.predict(to_uint8(before.flatten(0, 1)), to_uint8(rolled_true.flatten(0, 1)))
        out["idm_accuracy"] = idm_score(predicted, clips.labels.reshape(-1)).accuracy
        real_predicted, _ = idm.predict(to_uint8(previous.flatten(0, 1)), to_uint8(real.flatten(0, 1)))
        out["idm_accuracy_real"] = idm_score(real_predicted, clips.labels.reshape(-1)).accuracy
    return {k: round(v, 5) if isinstance(v, float) and math.isfinite(v) else v for k, v in out.items()}


def visible_labels(game: str, actions: np.ndarray, state: np.ndarray, layout: dict) -> np.ndarray:
    """Visible keys of the transitions t -> t+1 for t < len(state) - 1."""
    return visible_actions(game, actions[: len(state) - 1], state, layout)


def summarise(per_game: dict[str, dict]) -> dict:
    """The mean of every metric over games (each game weighs the same)."""
    names = sorted({k for metrics in per_game.values() for k in metrics})
    mean = {}
    for name in names:
        values = [
            m[name] for m in per_game.values() if isinstance(m.get(name), (int, float)) and math.isfinite(m[name])
        ]
        if values:
            mean[name] = round(float(np.mean(values)), 5)
    return mean
