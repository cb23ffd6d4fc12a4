"""Dynamics: from the tokens of the frames so far and the actions taken, the next frame's tokens.

Each block mixes space and time separately, as in Genie's ST-transformer (Bruce et al. 2024),
but with a Mamba state-space layer for time (Gu & Dao 2023; Dao & Gu 2024) instead of
causal temporal attention, so the cost of a play step and the memory it holds do not grow
with the number of frames played:
  spatial self-attention among the 256 positions of one frame,
  temporal Mamba across frames, one sequence per token position,
  cross-attention from the frame's tokens to embeddings of the most recent actions,
  an MLP.
All 256 next-frame tokens are predicted in one pass (MaskGIT-style parallel heads, no
token-by-token decoding). `forward` runs a whole clip for training; `step` runs one frame for
play, carrying a `DynamicsState`; tests hold the two to each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.config import DynamicsConfig
from core.mamba import Mamba, MambaState


@dataclass
class DynamicsState:
    layers: list[MambaState]   # the temporal Mamba state of every block
    recent_actions: torch.Tensor  # (B, action_context) ids, oldest first; num_actions = "none yet"


class Attention(nn.Module):
    """Multi-head attention; queries from x, keys/values from `context` (x itself when None)."""

    def __init__(self, d_model: int, n_heads: int, context_dim: int | None = None):
        super().__init__()
        context_dim = context_dim or d_model
        self.n_heads = n_heads
        self.to_q = nn.Linear(d_model, d_model, bias=False)
        self.to_k = nn.Linear(context_dim, d_model, bias=False)
        self.to_v = nn.Linear(context_dim, d_model, bias=False)
        self.to_out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, S, D), context (N, K, C) -> (N, S, D)."""
        context = x if context is None else context
        n, s, d = x.shape
        q = self.to_q(x).view(n, s, self.n_heads, -1).transpose(1, 2)              # (N, H, S, D/H)
        k = self.to_k(context).view(n, context.shape[1], self.n_heads, -1).transpose(1, 2)
        v = self.to_v(context).view(n, context.shape[1], self.n_heads, -1).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)                               # (N, H, S, D/H)
        return self.to_out(out.transpose(1, 2).reshape(n, s, d))


class DynamicsBlock(nn.Module):
    def __init__(self, config: DynamicsConfig):
        super().__init__()
        d = config.d_model
        self.spatial_norm = nn.LayerNorm(d)
        self.spatial = Attention(d, config.n_heads)
        self.temporal_norm = nn.LayerNorm(d)
        self.temporal = Mamba(d, d_state=config.d_state, expand=config.expand, headdim=config.headdim,
                              chunk_size=config.chunk_size)
        self.action_norm = nn.LayerNorm(d)
        self.action = Attention(d, config.n_heads, context_dim=config.action_dim)
        self.mlp_norm = nn.LayerNorm(d)
        hidden = int(config.mlp_ratio * d)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d))

    def forward(self, x: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """x (B, T, S, D), actions (B, T, K, A) embedded recent actions -> (B, T, S, D)."""
        b, t, s, d = x.shape
        x = x + self.spatial(self.spatial_norm(x).view(b * t, s, d)).view(b, t, s, d)
        seq = self.temporal_norm(x).transpose(1, 2).reshape(b * s, t, d)           # (B*S, T, D)
        x = x + self.temporal(seq).view(b, s, t, d).transpose(1, 2)
        x = x + self.action(self.action_norm(x).view(b * t, s, d), actions.flatten(0, 1)).view(b, t, s, d)
        return x + self.mlp(self.mlp_norm(x))

    def step(self, x: torch.Tensor, actions: torch.Tensor, state: MambaState) -> tuple[torch.Tensor, MambaState]:
        """x (B, S, D) one frame, actions (B, K, A) -> (B, S, D), new state."""
        b, s, d = x.shape
        x = x + self.spatial(self.spatial_norm(x))
        y, state = self.temporal.step(self.temporal_norm(x).reshape(b * s, d), state)
        x = x + y.view(b, s, d)
        x = x + self.action(self.action_norm(x), actions)
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
        self.out_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, config.vocab_size)

    def _embed_tokens(self, tokens):
        return self.token_embedding(tokens) + self.position_embedding  # (..., S, D)

    def _embed_actions(self, recent):
        return self.action_embedding(recent) + self.action_recency       # (..., K, A)

    def forward(self, tokens: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """tokens (B, T, S) ids of frames 0..T-1, actions (B, T) ids taken after each frame
        -> logits (B, T, S, V): logits[:, t] predict the tokens of frame t+1."""
        b, t, s = tokens.shape
        assert s == self.config.tokens_per_frame, s
        k = self.config.action_context
        padded = F.pad(actions, (k - 1, 0), value=self.config.num_actions)       # (B, T+K-1)
        recent = padded.unfold(1, k, 1)                                           # (B, T, K), oldest first
        context = self._embed_actions(recent)
        x = self._embed_tokens(tokens)                                            # (B, T, S, D)
        for block in self.blocks:
            x = block(x, context)
        return self.head(self.out_norm(x))

    def init_state(self, batch: int, device=None, dtype=None) -> DynamicsState:
        s = self.config.tokens_per_frame
        layers = [block.temporal.init_state(batch * s, device=device, dtype=dtype) for block in self.blocks]
        recent = torch.full((batch, self.config.action_context), self.config.num_actions, dtype=torch.long,
                            device=device)
        return DynamicsState(layers=layers, recent_actions=recent)

    def step(self, tokens: torch.Tensor, actions: torch.Tensor, state: DynamicsState
             ) -> tuple[torch.Tensor, DynamicsState]:
        """tokens (B, S) of the current frame, actions (B,) taken now -> logits (B, S, V) for the
        next frame, and the new state (the old one is not modified)."""
        recent = torch.cat([state.recent_actions[:, 1:], actions[:, None]], dim=1)   # (B, K)
        context = self._embed_actions(recent)
        x = self._embed_tokens(tokens)                                               # (B, S, D)
        layers = []
        for block, layer_state in zip(self.blocks, state.layers):
            x, layer_state = block.step(x, context, layer_state)
            layers.append(layer_state)
        return self.head(self.out_norm(x)), DynamicsState(layers=layers, recent_actions=recent)
