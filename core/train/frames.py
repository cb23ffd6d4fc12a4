"""Frames stage: train a frames-family model (nano v2) end to end on gameplay clips.

Both trained parts learn from the same clips of C + U frames (C context frames, U predicted):
- the dynamics predicts each small frame from the C before it and the keys, feeding its own
  predictions back for U steps (a short unrolled loss, with noise on the real context frames,
  so that its rollouts stay on the frames it makes, as GameNGen's context noise does);
- the upsampler draws the full-size frame C from the small real frame C (with a little noise:
  at play time it gets predicted small frames) and the full-size frame C-1.
Loss: 100 x the dynamics' MSE (small frames change little, so their MSE is ~100x below the
upsampler's reconstruction loss) + the upsampler's L1 + MSE. Validation on held-out levels:
the dynamics' MSE with the true keys and with keys shuffled across clips (their gap is how much
the keys matter), repeating the last frame as the baseline, and the upsampler's PSNR.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.config import ConfigError
from core.frame_dynamics import recent_actions, unrolled_loss
from core.frames import to_model
from core.tokenizer import reconstruction_loss
from core.train.dynamics import shuffled_actions
from core.train.loop import Stage
from core.train.tokenizer import psnr, save_grid

DYNAMICS_WEIGHT = 100.0


class FramesObjective(nn.Module):
    def __init__(self, model, unroll: int, context_noise: float, small_noise: float, rare_weight: float = 0.0,
                 decoder_clips: int | None = None):
        super().__init__()
        self.dynamics, self.decoder = model.dynamics, model.decoder
        self.pool = model.tokenizer
        self.unroll, self.context_noise, self.small_noise, self.rare_weight = unroll, context_noise, small_noise, rare_weight
        self.decoder_clips = decoder_clips   # None: every clip of the batch

    def prepare(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """uint8 clips (B, L, H, W, 3) -> full (B, L, 3, H, W), small (B, L, 3, r, r), actions (B, L)."""
        b, length = batch["frames"].shape[:2]
        flat = to_model(batch["frames"])                                             # (B*L, 3, H, W)
        full = flat.view(b, length, *flat.shape[1:])                                 # (B, L, 3, H, W)
        small = self.pool.encode(flat)
        small = small.view(b, length, *small.shape[1:])                              # (B, L, 3, r, r)
        return full, small, batch["actions"]

    def rollout_loss(self, small: torch.Tensor, actions: torch.Tensor, noise: float) -> torch.Tensor:
        return unrolled_loss(self.dynamics, small, actions, self.unroll, noise)

    def upsample(self, full: torch.Tensor, small: torch.Tensor, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (the upsampler's frame C from small frame C and full frame C-1, the real frame C)."""
        c = self.dynamics.config.context
        full, small = full[:self.decoder_clips], small[:self.decoder_clips]
        given = small[:, c]
        if noise:
            given = given + noise * torch.randn_like(given)
        return self.decoder(given, full[:, c - 1]), full[:, c]

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        full, small, actions = self.prepare(batch)
        dynamics_loss = self.rollout_loss(small, actions, self.context_noise)
        decoded, target = self.upsample(full, small, self.small_noise)
        decoder_loss = reconstruction_loss(decoded, target, self.rare_weight)
        loss = DYNAMICS_WEIGHT * dynamics_loss + decoder_loss
        return loss, {"loss": loss.detach(), "dynamics_mse": dynamics_loss.detach(),
                      "decoder_psnr": psnr(decoded.detach(), target).mean()}


class FramesStage(Stage):
    data_kind = "gameplay"
    val_metrics = ("dynamics_mse", "dynamics_mse_shuffled_actions", "action_gap_relative", "copy_last_mse",
                   "decoder_psnr")

    def __init__(self, config, model):
        super().__init__(config, model)
        if model.config.family != "frames":
            raise ConfigError("the frames stage trains frames-family models (nano v2); this model's family is "
                              f"{model.config.family!r}: use the tokenizer/tokens/dynamics/decoder stages for it")
        needed = model.dynamics.config.context + config.frames.unroll
        if config.data.clip_len < needed:
            raise ConfigError(f"data.clip_len must be at least dynamics.context + frames.unroll = {needed}")
        options = config.frames
        self.objective = FramesObjective(model, options.unroll, options.context_noise, options.small_noise,
                                         config.train.rare_colour_weight, options.decoder_clips)

    @torch.no_grad()
    def validate(self, batch):
        objective = self.objective
        full, small, actions = objective.prepare(batch)
        n = len(small)
        true = objective.rollout_loss(small, actions, 0.0).item()
        shuffled = objective.rollout_loss(small, shuffled_actions(actions), 0.0).item()
        c, u = objective.dynamics.config.context, objective.unroll
        copy = F.mse_loss(small[:, c - 1:c].expand(-1, u, -1, -1, -1), small[:, c:c + u]).item()
        decoded, target = objective.upsample(full, small, 0.0)              # the first decoder_clips clips
        return {"dynamics_mse": (true * n, n), "dynamics_mse_shuffled_actions": (shuffled * n, n),
                "action_gap_relative": ((shuffled - true) / max(true, 1e-12) * n, n),
                "copy_last_mse": (copy * n, n), "decoder_psnr": (psnr(decoded, target).sum().item(), len(decoded))}

    @torch.no_grad()
    def write_samples(self, batch, path):
        """Rows: the real frame C-1, the real frame C, the dreamed frame C (dynamics, then upsampler)."""
        objective = self.objective
        full, small, actions = objective.prepare({k: v[:4] for k, v in batch.items()})
        c, k = objective.dynamics.config.context, objective.dynamics.config.action_context
        predicted = objective.dynamics.predict(small[:, :c], recent_actions(actions, c - 1, k)).clamp(-1, 1)
        save_grid([full[:, c - 1], full[:, c], objective.decoder(predicted, full[:, c - 1]).clamp(-1, 1)], path)


STAGE = FramesStage
