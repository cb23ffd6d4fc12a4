"""Inverse dynamics model (IDM): two consecutive frames -> the action that led from one to the other.

Trained on real recorded play, it then judges generated transitions: a world model that
obeys the controls produces frame pairs from which the IDM reads back the commanded action
(the "action accuracy" of world-model papers; VPT trains an IDM the same way). Labels are the
visible part of each action (core/evaluation/effects.py). Kept small and CPU-fast: frames
are average-pooled to 64x64 (a 2-3 px move survives as a fractional change of the pooled
pixels), and the input is frame t, frame t+1 and their difference (motion is what carries
the action); four strided convs and a linear head follow (~0.1 s per training step of 32
on one core).

Saved as `idm.safetensors` + `idm.json` (its config, the game, and its own held-out accuracy).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from core.actions import ACTIONS, NUM_ACTIONS
from core.atomic import atomic_write
from core.config_bounds import check_sizes, read_json
from core.world_model import WeightsError

WEIGHTS_FILE = "idm.safetensors"
CONFIG_FILE = "idm.json"


@dataclass
class IDMConfig:
    game: str = "platformer"  # the game it was trained on (one IDM per game)
    image_size: int = 256  # frames it reads are image_size x image_size RGB
    pool: int = 4  # average-pool factor before the convs (256 -> 64)
    channels: tuple[int, ...] = (16, 32, 64, 64)  # width of each stride-2 conv
    num_actions: int = NUM_ACTIONS  # output classes: the shared action vocabulary

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if self.image_size % self.pool:
            raise ValueError(f"pool {self.pool} does not divide image_size {self.image_size}")


def pool_frames(frames: np.ndarray, pool: int) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (N, 3, H/pool, W/pool): average-pooled, rounded to whole levels. What an IDM
    reads, in the form a training set holds it: a pool-2 set is a quarter of its frames' bytes (float16 was half)."""
    if pool < 1 or frames.shape[1] % pool or frames.shape[2] % pool:
        raise ValueError(f"pool {pool} does not divide image_size {frames.shape[1]}")
    x = torch.as_tensor(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    return F.avg_pool2d(x, pool).round_().to(torch.uint8).numpy()


def from_pooled(pooled: np.ndarray | torch.Tensor) -> torch.Tensor:
    """pool_frames' uint8 -> float in [-1, 1], as forward reads it."""
    return torch.as_tensor(pooled).float() / 127.5 - 1


class InverseDynamics(nn.Module):
    def __init__(self, config: IDMConfig):
        super().__init__()
        self.config = config
        layers, c_in = [], 9
        for c_out in config.channels:
            layers += [
                nn.Conv2d(c_in, c_out, 5 if c_in == 9 else 3, stride=2, padding=2 if c_in == 9 else 1),
                nn.GroupNorm(min(8, c_out), c_out),
                nn.SiLU(),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * c_in, config.num_actions)

    def prepare(self, frames) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> pooled float (N, 3, H/pool, W/pool) in [-1, 1]: the input forward reads."""
        frames = np.asarray(frames)
        if frames.shape[1:] != (self.config.image_size, self.config.image_size, 3):
            raise ValueError(
                f"this IDM reads ({self.config.image_size}, {self.config.image_size}, 3) frames, "
                f"got {tuple(frames.shape[1:])}"
            )
        return from_pooled(pool_frames(frames, self.config.pool))

    def forward(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """before, after prepared frames (B, 3, h, w) -> logits (B, num_actions)."""
        x = self.features(torch.cat([before, after, after - before], 1))  # (B, C, h/16, w/16)
        # mean and max over positions: mean sees the camera scroll, max a small sprite's move
        return self.head(torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1))

    @torch.inference_mode()
    def predict(self, before: np.ndarray, after: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (N, H, W, 3) pairs -> (predicted ids (N,), probabilities (N, num_actions))."""
        self.eval()
        probs = [
            self(self.prepare(before[i : i + batch]), self.prepare(after[i : i + batch])).softmax(-1)
            for i in range(0, len(before), batch)
        ]
        probs = torch.cat(probs).numpy() if probs else np.zeros((0, self.config.num_actions), np.float32)
        return probs.argmax(1), probs


@dataclass
class IDMReport:
    """Accuracy of an IDM on labelled transitions, overall and per action."""

    accuracy: float  # share of transitions whose predicted id equals the label
    count: int  # transitions scored
    confusion: list[list[int]]  # [label][predicted] counts over the 18 actions
    relabelled: float = 0.0  # share of commanded actions whose visible part differs
    per_action: dict[str, float] = field(default_factory=dict)  # action name -> recall (labels present only)

    def to_dict(self) -> dict:
        return asdict(self)


def score(predicted: np.ndarray, labels: np.ndarray, commanded: np.ndarray | None = None) -> IDMReport:
    """Accuracy and confusion of predicted vs label ids (N,); `commanded` gives the relabelled share."""
    confusion = np.zeros((NUM_ACTIONS, NUM_ACTIONS), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    totals = confusion.sum(1)
    per_action = {ACTIONS[a]: round(float(confusion[a, a] / totals[a]), 4) for a in np.flatnonzero(totals)}
    relabelled = float((commanded != labels).mean()) if commanded is not None and len(labels) else 0.0
    return IDMReport(
        accuracy=float((predicted == labels).mean()) if len(labels) else float("nan"),
        count=int(len(labels)),
        confusion=confusion.tolist(),
        relabelled=round(relabelled, 4),
        per_action=per_action,
    )


def save_idm(model: InverseDynamics, directory: str | Path, info: dict) -> None:
    """Write idm.safetensors + idm.json (config + `info`, e.g. the held-out accuracy) atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(directory / WEIGHTS_FILE, lambda path: save_file(tensors, path))
    text = json.dumps({"config": asdict(model.config), **info}, indent=2)
    atomic_write(directory / CONFIG_FILE, lambda path: Path(path).write_text(text))


def load_idm(directory: str | Path) -> tuple[InverseDynamics, dict]:
    """(model in eval mode, the saved info) from a folder written by save_idm; strict."""
    directory = Path(directory)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (directory / name).is_file():
            raise FileNotFoundError(
                f"{directory / name} not found: an IDM folder holds {CONFIG_FILE} and "
                f"{WEIGHTS_FILE}; train one with `pocketworld idm train --data SHARDS --out DIR`"
            )
    # an IDM folder may be a user's (ingest --label-with): its sizes are bounded before anything is built
    info = read_json(directory / CONFIG_FILE)
    if not isinstance(info, dict) or not isinstance(info.get("config"), dict):
        raise ValueError(f"{directory / CONFIG_FILE}: not an IDM config (no 'config' object)")
    check_sizes(info["config"], str(directory / CONFIG_FILE))
    try:
        model = InverseDynamics(IDMConfig(**info.pop("config")))
    except (TypeError, KeyError) as err:
        raise ValueError(f"{directory / CONFIG_FILE}: not an IDM config ({err})") from None
    try:
        tensors = load_file(str(directory / WEIGHTS_FILE))
    except (SafetensorError, OSError) as err:
        raise WeightsError(f"{directory / WEIGHTS_FILE}: not a readable safetensors file ({err})") from None
    expected = model.state_dict()
    if set(tensors) != set(expected) or any(tensors[k].shape != expected[k].shape for k in expected):
        raise WeightsError(f"{directory / WEIGHTS_FILE} does not match the IDM described by {CONFIG_FILE}")
    model.load_state_dict(tensors, strict=True)
    return model.eval(), info
