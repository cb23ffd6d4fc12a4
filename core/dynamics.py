"""Dynamics: from the tokens of the frames so far and the actions taken, the next frame's tokens.

Each block mixes space and time separately, as in Genie's ST-transformer (Bruce et al. 2024),
but with a Mamba state-space layer for time (Gu & Dao 2023; Dao & Gu 2024) instead of
causal temporal attention, so the cost of a play step and the memory it holds do not grow
with the number of frames played:
  cross-attention from the frame's tokens to embeddings of the most recent actions,
  spatial self-attention among the 256 positions of one frame (2D rotary positions),
  temporal Mamba across frames, one sequence per token position,
  an MLP.
All 256 next-frame tokens are predicted in one pass (MaskGIT-style parallel heads, no
token-by-token decoding). `forward` runs a whole clip for training; `step` runs one frame for
play, carrying a `DynamicsState`; tests hold the two to each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.config import DynamicsConfig
from core.mamba import Mamba, MambaState


@dataclass
class DynamicsState:
    layers: list[MambaState]  # the temporal Mamba state of every block
    recent_actions: torch.Tensor  # (B, action_context) ids, oldest first; num_actions = "none yet"


def grid_rotary(grid: int, head_dim: int, base: float = 100.0) -> tuple[torch.Tensor, torch.Tensor]:
    """2D axial rotary embedding (RoPE, Su et al. 2021, split over rows and columns) for a
    grid x grid frame: half of each head's channels turn with the row, half with the column,
    so attention scores depend on the offset between two cells. Motion in a 2D game is an
    offset, which makes "look one cell to the left when LEFT is pressed" easy to learn.
    -> cos, sin (grid*grid, head_dim)."""
    assert head_dim % 4 == 0, head_dim
    freqs = base ** (-torch.arange(0, head_dim // 4, dtype=torch.float32) / (head_dim // 4))  # (D/4,)
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    angles = torch.cat([rows.reshape(-1, 1) * freqs, cols.reshape(-1, 1) * freqs], dim=1)  # (S, D/2)
    angles = torch.cat([angles, angles], dim=1)  # (S, D)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (..., S, D) rotated pairwise (i, i + D/2) by the angles behind cos/sin (S, D)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    """Multi-head attention; queries from x, keys/values from `context` (x itself when None)."""

    def __init__(self, d_model: int, n_heads: int, context_dim: int | None = None):
        super().__init__()
        context_dim = context_dim or d_model
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.to_q = nn.Linear(d_model, d_model, bias=False)
        self.to_k = nn.Linear(context_dim, d_model, bias=False)
        self.to_v = nn.Linear(context_dim, d_model, bias=False)
        self.to_out = nn.Linear(d_model, d_model)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """x (N, S, D), context (N, K, C) -> (N, S, D); `rotary` (cos, sin) rotates q and k by position."""
        context = x if context is None else context
        n, s, d = x.shape
        q = self.to_q(x).view(n, s, self.n_heads, -1).transpose(1, 2)  # (N, H, S, D/H)
        k = self.to_k(context).view(n, context.shape[1], self.n_heads, -1).transpose(1, 2)
        v = self.to_v(context).view(n, context.shape[1], self.n_heads, -1).transpose(1, 2)
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        out = F.scaled_dot_product_attention(q, k, v)  # (N, H, S, D/H)
        return self.to_out(out.transpose(1, 2).reshape(n, s, d))


class DynamicsBlock(nn.Module):
    def __init__(self, config: DynamicsConfig):
        super().__init__()
        d = config.d_model
        # the action comes first, so that even the first spatial attention can look where it points
        self.action_norm = nn.LayerNorm(d)
        self.action = Attention(d, config.n_heads, context_dim=config.action_dim)
        self.spatial_norm = nn.LayerNorm(d)
        self.spatial = Attention(d, config.n_heads)
        self.temporal_norm = nn.LayerNorm(d)
        self.temporal = Mamba(
            d, d_state=config.d_state, expand=config.expand, headdim=config.headdim, chunk_size=config.chunk_size
        )
        self.mlp_norm = nn.LayerNorm(d)
        hidden = int(config.mlp_ratio * d)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d))

    def _within_frame(self, x, actions, rotary):
        """Per-frame mixing of frames x (N, S, D) with embedded actions (N, K, A)."""
        x = x + self.action(self.action_norm(x), actions)
        return x + self.spatial(self.spatial_norm(x), rotary=rotary)

    def forward(self, x: torch.Tensor, actions: torch.Tensor, rotary) -> torch.Tensor:
        """x (B, T, S, D), actions (B, T, K, A) embedded recent actions -> (B, T, S, D)."""
        b, t, s, d = x.shape
        x = self._within_frame(x.reshape(b * t, s, d), actions.flatten(0, 1), rotary).view(b, t, s, d)
        seq = self.temporal_norm(x).transpose(1, 2).reshape(b * s, t, d)  # (B*S, T, D)
        x = x + self.temporal(seq).view(b, s, t, d).transpose(1, 2)
        return x + self.mlp(self.mlp_norm(x))

    def step(
        self, x: torch.Tensor, actions: torch.Tensor, rotary, state: MambaState, inplace: bool = False
    ) -> tuple[torch.Tensor, MambaState]:
        """x (B, S, D) one frame, actions (B, K, A) -> (B, S, D), new state (`state` itself if `inplace`)."""
        b, s, d = x.shape
        x = self._within_frame(x, actions, rotary)
        y, state = self.temporal.step(self.temporal_norm(x).reshape(b * s, d), state, inplace=inplace)
        x = x + y.view(b, s, d)
        return x + self.mlp(self.mlp_norm(x)), state


class Dynamics(nn.Module):
    def __init__(self, config: DynamicsConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.token_embedding = nn.Embedding(config.vocab_size, d)
        self.position_embedding = nn.Parameter(torch.randn(config.tokens_per_frame, d) * 0.02)
        # one extra row: "no action yet", for the start of a clip or a session
        self.action_embedding = nn.Embedding(config.num_actions + 1, config.action_dim)
        self.action_recency = nn.Parameter(torch.randn(config.action_context, config.action_dim) * 0.02)
        self.blocks = nn.ModuleList(DynamicsBlock(config) for _ in range(config.n_layers))
        grid = math.isqrt(config.tokens_per_frame)
        cos, sin = grid_rotary(grid, d // config.n_heads)
        self.register_buffer("rotary_cos", cos, persistent=False)
        self.register_buffer("rotary_sin", sin, persistent=False)
        self.out_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, config.vocab_size)

    def _embed_tokens(self, tokens):
        return self.token_embedding(tokens) + self.position_embedding  # (..., S, D)

    def _embed_actions(self, recent):
        return self.action_embedding(recent) + self.action_recency  # (..., K, A)

    def forward(self, tokens: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """tokens (B, T, S) ids of frames 0..T-1, actions (B, T) ids taken after each frame
        -> logits (B, T, S, V): logits[:, t] predict the tokens of frame t+1."""
        b, t, s = tokens.shape
        assert s == self.config.tokens_per_frame, s
        k = self.config.action_context
        padded = F.pad(actions, (k - 1, 0), value=self.config.num_actions)  # (B, T+K-1)
        recent = padded.unfold(1, k, 1)  # (B, T, K), oldest first
        context = self._embed_actions(recent)
        x = self._embed_tokens(tokens)  # (B, T, S, D)
        rotary = (self.rotary_cos, self.rotary_sin)
        for block in self.blocks:
            x = block(x, context, rotary)
        return self.head(self.out_norm(x))

    def init_state(self, batch: int, device=None, dtype=None) -> DynamicsState:
        s = self.config.tokens_per_frame
        layers = [block.temporal.init_state(batch * s, device=device, dtype=dtype) for block in self.blocks]
        recent = torch.full(
            (batch, self.config.action_context), self.config.num_actions, dtype=torch.long, device=device
        )
        return DynamicsState(layers=layers, recent_actions=recent)

    def step(
        self, tokens: torch.Tensor, actions: torch.Tensor, state: DynamicsState, inplace: bool = False
    ) -> tuple[torch.Tensor, DynamicsState]:
        """tokens (B, S) of the current frame, actions (B,) taken now -> logits (B, S, V) for the
        next frame, and the new state. The old state is not modified unless `inplace`: then its
        Mamba states are updated where they are (faster; for a caller that drops the old state)."""
        recent = torch.cat([state.recent_actions[:, 1:], actions[:, None]], dim=1)  # (B, K)
        context = self._embed_actions(recent)
        x = self._embed_tokens(tokens)  # (B, S, D)
        rotary = (self.rotary_cos, self.rotary_sin)
        layers = []
        for block, layer_state in zip(self.blocks, state.layers):
            x, layer_state = block.step(x, context, rotary, layer_state, inplace=inplace)
            layers.append(layer_state)
        return self.head(self.out_norm(x)), DynamicsState(layers=layers, recent_actions=recent)
