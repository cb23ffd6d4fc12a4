"""Decoder stage: train the frame decoder to draw frame t+1 from its tokens and frame t.

The tokenizer is frozen (its ids are what the dynamics will produce at play time); the
decoder learns the frame from those ids plus the previous frame, which carries most of a 2D
scene's detail (core/decoder.py). Loss: L1 + MSE, as for the tokenizer. Validation: PSNR of
the decoded next frame on held-out level seeds; sample grids show previous / real next /
decoded next, one row each.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from core.config import ConfigError
from core.decoder import FrameDecoder
from core.frames import to_model
from core.tokenizer import Tokenizer, reconstruction_loss
from core.train.loop import Stage
from core.train.tokenizer import psnr, save_grid, sprite_psnr


def frame_pairs(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 clips (B, L, H, W, 3) -> (previous, next) float frames, each (B*(L-1), 3, H, W)."""
    return to_model(frames[:, :-1]), to_model(frames[:, 1:])


class DecoderObjective(nn.Module):
    def __init__(self, decoder: FrameDecoder, tokenizer: Tokenizer, rare_weight: float = 0.0):
        super().__init__()
        self.decoder = decoder
        self.rare_weight = rare_weight
        self.frozen = {"tokenizer": tokenizer.eval().requires_grad_(False)}  # a dict: not a submodule, not trained

    def decode_next(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        previous, target = frame_pairs(batch["frames"])
        with torch.no_grad():
            tokens = self.frozen["tokenizer"].encode(target)  # (N, 16, 16)
        return previous, target, self.decoder(tokens, previous)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        _, target, decoded = self.decode_next(batch)
        loss = reconstruction_loss(decoded, target, self.rare_weight)
        return loss, {"loss": loss.detach(), "psnr": psnr(decoded.detach(), target).mean()}


class DecoderStage(Stage):
    data_kind = "gameplay"
    val_metrics = ("loss", "psnr", "sprite_psnr")

    def __init__(self, config, model):
        super().__init__(config, model)
        if config.data.clip_len < 2:
            raise ConfigError("the decoder stage pairs each frame with the next: data.clip_len must be >= 2")
        self.objective = DecoderObjective(model.decoder, model.tokenizer, config.train.rare_colour_weight)

    def to(self, device):
        self.objective.frozen["tokenizer"].to(device)

    def validate(self, batch):
        _, target, decoded = self.objective.decode_next(batch)
        n = len(target)
        return {
            "loss": (reconstruction_loss(decoded, target, self.objective.rare_weight).item() * n, n),
            "psnr": (psnr(decoded, target).sum().item(), n),
            "sprite_psnr": sprite_psnr(decoded, target),
        }

    def write_samples(self, batch, path):
        previous, target, decoded = self.objective.decode_next({"frames": batch["frames"][:4, :2]})
        save_grid([previous, target, decoded], path)


STAGE = DecoderStage
