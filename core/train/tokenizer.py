"""Tokenizer stage: train the frame tokenizer to reconstruct frames through its 16x16 ids.

Loss: L1 + MSE (core/tokenizer.py's `reconstruction_loss`), optionally weighted towards
rare-colour pixels (`train.rare_colour_weight`): sprites are 1-2% of a frame, and an unweighted
loss reached 24 dB on the level while dropping the player (runs/nano-tokenizer samples).
Perceptual (LPIPS) and adversarial terms, as in VQGAN (Esser et al. 2021), are not used: LPIPS
needs pretrained VGG/AlexNet weights this offline project does not ship, and on flat-coloured
2D frames PSNR already rises steadily with L1 + MSE. Validation reports PSNR on held-out level
seeds and the share of the vocabulary the batch uses (dead codes are a bug); every
`log.sample_every` steps a grid of real (top) vs reconstructed (bottom) frames is saved under
RUN/samples/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from core.atomic import atomic_write
from core.frames import to_model, to_uint8
from core.tokenizer import Tokenizer, codebook_usage, rare_colour_mask, reconstruction_loss
from core.train.loop import Stage


def psnr(images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of (N, 3, H, W) images in [-1, 1] (peak-to-peak 2)."""
    mse = (images.clamp(-1, 1) - targets).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-10))


def sprite_psnr(images: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
    """PSNR over the rare-colour (sprite) pixels of a batch, as (sum, count) for the loop's
    averaging: whole-frame PSNR hides a model that draws the level and drops the player."""
    mask = rare_colour_mask(targets)
    if not mask.any():
        return 0.0, 0
    mse = ((images.clamp(-1, 1) - targets).pow(2) * mask).sum() / (mask.sum() * targets.shape[1])
    return (10 * torch.log10(4.0 / mse.clamp_min(1e-10))).item(), 1


def save_grid(rows: list[torch.Tensor], path: Path) -> None:
    """rows of (N, 3, H, W) images in [-1, 1] -> one PNG, a row per list entry, written atomically."""
    grid = np.concatenate([np.concatenate(list(to_uint8(row.clamp(-1, 1))), axis=1) for row in rows], axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: Image.fromarray(grid).save(tmp, format="PNG"))


class TokenizerObjective(nn.Module):
    def __init__(self, tokenizer: Tokenizer, rare_weight: float = 0.0):
        super().__init__()
        self.tokenizer = tokenizer
        self.rare_weight = rare_weight

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        frames = to_model(batch["frames"])  # (B*L, 3, H, W)
        recon, ids = self.tokenizer(frames)
        loss = reconstruction_loss(recon, frames, self.rare_weight)
        usage = codebook_usage(ids, self.tokenizer.config.vocab_size)
        return loss, {
            "loss": loss.detach(),
            "psnr": psnr(recon.detach(), frames).mean(),
            "codes_used": usage["used_fraction"],
        }


class TokenizerStage(Stage):
    data_kind = "gameplay"
    val_metrics = ("loss", "psnr", "sprite_psnr", "codes_used")

    def __init__(self, config, model):
        super().__init__(config, model)
        self.objective = TokenizerObjective(model.tokenizer, config.train.rare_colour_weight)

    def validate(self, batch):
        frames = to_model(batch["frames"])
        recon, ids = self.objective.tokenizer(frames)
        n = len(frames)
        return {
            "loss": (reconstruction_loss(recon, frames, self.objective.rare_weight).item() * n, n),
            "psnr": (psnr(recon, frames).sum().item(), n),
            "sprite_psnr": sprite_psnr(recon, frames),
            "codes_used": (codebook_usage(ids, self.objective.tokenizer.config.vocab_size)["used_fraction"], 1),
        }

    def write_samples(self, batch, path):
        frames = to_model(batch["frames"])[:4]
        recon, _ = self.objective.tokenizer(frames)
        save_grid([frames, recon], path)


STAGE = TokenizerStage
