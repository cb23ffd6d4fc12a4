"""An action-conditioned next-frame predictor at a small internal resolution: the lab's arms.

A small U-Net (Ronneberger et al. 2015) over the last few frames, stacked as channels, that
outputs the change to the last frame (most of a 2D frame stays as it was). The keys reach it
in one of two ways, chosen by `action_mode`:
- "film": the embedded recent actions scale and shift the features of every residual block
  (FiLM, Perez et al. 2018; DIAMOND's adaptive group norm, Oasis's AdaLN), initialised to
  zero so that an untrained block ignores them;
- "input": the same embedding is added to the first features only (the weak baseline).
The action vector sums one embedding per recency (the key pressed now, the one before, ...),
so a held key and a fresh press differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.actions import NUM_ACTIONS
from core.config import ConfigError

ACTION_MODES = ("film", "input")


@dataclass
class PredictorConfig:
    resolution: int = 64                  # internal frame size (frames are area-pooled to it)
    context: int = 2                      # past frames it sees (2 give position and velocity)
    channels: tuple[int, ...] = (32, 64, 128)  # U-Net width at resolution, /2, /4
    mid_blocks: int = 2                   # residual blocks at the coarsest level
    action_mode: str = "film"             # film (every block) or input (first features only)
    action_context: int = 4               # recent actions embedded (the current one first)
    action_dim: int = 64                  # action embedding width

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if self.action_mode not in ACTION_MODES:
            raise ConfigError(f"action_mode must be one of {ACTION_MODES}, got {self.action_mode!r}")
        if self.resolution % 2 ** (len(self.channels) - 1):
            raise ConfigError(f"resolution {self.resolution} must divide by {2 ** (len(self.channels) - 1)}")
        if self.context < 1 or self.action_context < 1:
            raise ConfigError("context and action_context must be >= 1")


class FiLMBlock(nn.Module):
    """GroupNorm -> (FiLM) -> SiLU -> conv, twice, with a residual path."""

    def __init__(self, c_in: int, c_out: int, action_dim: int | None):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(8, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.film = nn.Linear(action_dim, 2 * c_out) if action_dim else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)   # an untrained block ignores the action
            nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """x (B, C, h, w), action (B, A) -> (B, C_out, h, w)."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.norm2(h)
        if self.film is not None:
            scale, shift = self.film(action)[:, :, None, None].chunk(2, dim=1)   # (B, C_out, 1, 1) each
            h = h * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class FramePredictor(nn.Module):
    def __init__(self, config: PredictorConfig):
        super().__init__()
        self.config = config
        c = config.channels
        film_dim = config.action_dim if config.action_mode == "film" else None
        # one embedding table per recency: a held key and a fresh press look different
        self.action_embedding = nn.Embedding(config.action_context * (NUM_ACTIONS + 1), config.action_dim)
        self.action_mlp = nn.Sequential(nn.SiLU(), nn.Linear(config.action_dim, config.action_dim))
        self.stem = nn.Conv2d(3 * config.context, c[0], 3, padding=1)
        self.action_in = nn.Linear(config.action_dim, c[0]) if config.action_mode == "input" else None
        self.down_blocks = nn.ModuleList(FiLMBlock(c[i], c[i], film_dim) for i in range(len(c) - 1))
        self.downsample = nn.ModuleList(nn.Conv2d(c[i], c[i + 1], 3, stride=2, padding=1) for i in range(len(c) - 1))
        self.mid = nn.ModuleList(FiLMBlock(c[-1], c[-1], film_dim) for _ in range(config.mid_blocks))
        self.up_blocks = nn.ModuleList(FiLMBlock(c[i + 1] + c[i], c[i], film_dim) for i in reversed(range(len(c) - 1)))
        self.out_norm = nn.GroupNorm(8, c[0])
        self.to_rgb = nn.Conv2d(c[0], 3, 3, padding=1)
        nn.init.zeros_(self.to_rgb.weight)  # starts as "nothing changes": the last frame again
        nn.init.zeros_(self.to_rgb.bias)

    def embed_actions(self, recent: torch.Tensor) -> torch.Tensor:
        """recent (B, K) ids, the current action first; NUM_ACTIONS = none yet -> (B, A)."""
        k = recent.shape[1]
        offsets = torch.arange(k, device=recent.device) * (NUM_ACTIONS + 1)
        return self.action_mlp(self.action_embedding(recent + offsets).sum(1))

    def forward(self, context: torch.Tensor, recent: torch.Tensor) -> torch.Tensor:
        """context (B, C, 3, r, r) oldest first, in [-1, 1]; recent (B, K) actions, the one pressed at the
        last context frame first -> the next frame (B, 3, r, r)."""
        action = self.embed_actions(recent)                                   # (B, A)
        x = self.stem(context.flatten(1, 2))                                  # (B, c0, r, r)
        if self.action_in is not None:
            x = x + self.action_in(action)[:, :, None, None]
        skips = []
        for block, down in zip(self.down_blocks, self.downsample):
            x = block(x, action)
            skips.append(x)
            x = down(x)                                                       # (B, c_i+1, r/2^i+1, ...)
        for block in self.mid:
            x = block(x, action)
        for block in self.up_blocks:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(torch.cat([x, skips.pop()], dim=1), action)
        return context[:, -1] + self.to_rgb(F.silu(self.out_norm(x)))


def recent_actions(actions: torch.Tensor, t: int, k: int) -> torch.Tensor:
    """actions (B, T) -> (B, k): actions t, t-1, ..., t-k+1 (NUM_ACTIONS where before the clip)."""
    picks = [actions[:, t - i] if t - i >= 0 else torch.full_like(actions[:, 0], NUM_ACTIONS) for i in range(k)]
    return torch.stack(picks, 1)
