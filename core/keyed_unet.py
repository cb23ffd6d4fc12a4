"""The U-Net the frames family's dynamics and its motion net share: small frames in, features out, the keys in
every block.

A small U-Net (Ronneberger et al. 2015) over input channels (the last few small frames, stacked). The keys reach
it in one of two ways:
- "film": the embedded recent keys scale and shift the features of every residual block (FiLM, Perez et al.
  2018; as DIAMOND's adaptive group norm and Oasis's AdaLN), zero-initialised so that an untrained block ignores
  them;
- "input": the same embedding is added to the first features only (the weak baseline the controllability lab
  compares against).
The key vector sums one embedding per recency (the key pressed now, the one before, ...), so a held key and a
fresh press differ. What reads the features (a frame, a denoised frame, scores of moves) is the subclass's.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.actions import NUM_ACTIONS


class FiLMBlock(nn.Module):
    """GroupNorm -> (FiLM by the keys) -> SiLU -> conv, twice, with a residual path."""

    def __init__(self, c_in: int, c_out: int, action_dim: int | None):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(8, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.film = nn.Linear(action_dim, 2 * c_out) if action_dim else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """x (B, C, h, w), action (B, A) -> (B, C_out, h, w)."""
        h = self.norm2(self.conv1(F.silu(self.norm1(x))))
        if self.film is not None:
            scale, shift = self.film(action)[:, :, None, None].chunk(2, dim=1)  # (B, C_out, 1, 1) each
            h = h * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class KeyedUNet(nn.Module):
    def __init__(
        self,
        in_channels: int,
        channels: tuple[int, ...],
        mid_blocks: int,
        action_mode: str,
        action_context: int,
        action_dim: int,
    ):
        super().__init__()
        c = channels
        film_dim = action_dim if action_mode == "film" else None
        # one table per recency: a held key and a fresh press look different
        self.action_embedding = nn.Embedding(action_context * (NUM_ACTIONS + 1), action_dim)
        self.action_mlp = nn.Sequential(nn.SiLU(), nn.Linear(action_dim, action_dim))
        self.stem = nn.Conv2d(in_channels, c[0], 3, padding=1)
        self.action_in = nn.Linear(action_dim, c[0]) if action_mode == "input" else None
        self.down_blocks = nn.ModuleList(FiLMBlock(c[i], c[i], film_dim) for i in range(len(c) - 1))
        self.downsample = nn.ModuleList(nn.Conv2d(c[i], c[i + 1], 3, stride=2, padding=1) for i in range(len(c) - 1))
        self.mid = nn.ModuleList(FiLMBlock(c[-1], c[-1], film_dim) for _ in range(mid_blocks))
        self.up_blocks = nn.ModuleList(FiLMBlock(c[i + 1] + c[i], c[i], film_dim) for i in reversed(range(len(c) - 1)))
        self.out_norm = nn.GroupNorm(8, c[0])

    def embed_actions(self, recent: torch.Tensor) -> torch.Tensor:
        """recent (B, K) ids, the current key first -> (B, A)."""
        offsets = torch.arange(recent.shape[1], device=recent.device) * (NUM_ACTIONS + 1)
        return self.action_mlp(self.action_embedding(recent + offsets).sum(1))

    def trunk(self, x: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The U-Net from the stem's features x (B, c0, r, r) and the key vector (B, A) to the features the output
        reads (B, c0, r, r), normalised and activated. With action_mode "input" the keys join x here."""
        if self.action_in is not None:
            x = x + self.action_in(action)[:, :, None, None]
        skips = []
        for block, down in zip(self.down_blocks, self.downsample):
            x = block(x, action)
            skips.append(x)
            x = down(x)  # (B, c_i+1, h/2, w/2)
        for block in self.mid:
            x = block(x, action)
        for block in self.up_blocks:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(torch.cat([x, skips.pop()], dim=1), action)
        return F.silu(self.out_norm(x))
