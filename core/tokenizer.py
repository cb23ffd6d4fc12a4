"""Frame tokenizer: 256x256 RGB frames <-> 16x16 grids of ids over a 512-word vocabulary.

A VQ-VAE whose encoder is MobileNetV2-style (inverted residuals with depthwise convs,
Sandler et al. 2018) and whose quantizer is finite scalar quantization (FSQ, Mentzer et al.
2023, "Finite Scalar Quantization: VQ-VAE Made Simple"): each of 3 latent channels is
bounded and rounded to one of 8 levels, and the id is the 3-digit base-8 number. FSQ's
codebook is a fixed grid, not learned vectors, so it cannot collapse: there are no code
vectors that stop receiving assignments and die, no commitment loss to balance, and no
restarts to tune. Usage is still measured (`codebook_usage`) because an encoder can choose
to use few grid points; the tests check it does not.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.config import TokenizerConfig


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise (optionally strided), 1x1 project."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = c_in * expand_ratio
        self.residual = stride == 1 and c_in == c_out
        self.block = nn.Sequential(
            nn.Conv2d(c_in, hidden, 1, bias=False),
            nn.GroupNorm(8, hidden),
            nn.SiLU(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.GroupNorm(8, hidden),
            nn.SiLU(),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.GroupNorm(8, c_out),
        )

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class ResBlock(nn.Module):
    """Two 3x3 convs with a skip: the decoder's basic block (plain convs reconstruct detail better)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.GroupNorm(8, c_in),
            nn.SiLU(),
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.GroupNorm(8, c_out),
            nn.SiLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1),
        )
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x):
        return self.skip(x) + self.block(x)


class FSQ(nn.Module):
    """Finite scalar quantizer: (B, D, H, W) latents -> ids (B, H, W) and grid codes in [-1, 1]."""

    def __init__(self, levels: tuple[int, ...]):
        super().__init__()
        self.levels = levels
        self.register_buffer("_levels", torch.tensor(levels, dtype=torch.float32), persistent=False)
        basis = [math.prod(levels[:i]) for i in range(len(levels))]
        self.register_buffer("_basis", torch.tensor(basis, dtype=torch.long), persistent=False)

    def forward(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        levels = self._levels.view(1, -1, 1, 1)
        scaled = (torch.tanh(latents) + 1) / 2 * (levels - 1)  # (B, D, H, W) in [0, L-1]
        rounded = scaled.round()
        digits = scaled + (rounded - scaled).detach()  # straight-through rounding
        ids = (rounded.long() * self._basis.view(1, -1, 1, 1)).sum(1)  # (B, H, W)
        return self._digits_to_codes(digits), ids

    def ids_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, H, W) -> codes (B, D, H, W) in [-1, 1]."""
        digits = (ids.unsqueeze(1) // self._basis.view(1, -1, 1, 1)) % self._levels.long().view(1, -1, 1, 1)
        return self._digits_to_codes(digits.float())

    def _digits_to_codes(self, digits):
        return digits / (self._levels.view(1, -1, 1, 1) - 1) * 2 - 1


class Tokenizer(nn.Module):
    def __init__(self, config: TokenizerConfig):
        super().__init__()
        self.config = config
        c, r = config.channels, config.expand_ratio
        # A 4x4 patchify stem goes straight to 64x64: at 256 and 128 pixels even thin convs cost
        # most of a CPU training step, and flat-coloured 2D art loses nothing to a linear patch map.
        layers: list[nn.Module] = [nn.Conv2d(3, c[0], 4, 4), nn.SiLU()]  # 256 -> 64
        for i in range(4):
            if i > 0:
                stride = 2 if i < 3 else 1
                layers.append(InvertedResidual(c[i - 1], c[i], stride, r))  # 64 -> 32 -> 16 -> 16
            layers += [InvertedResidual(c[i], c[i], 1, r) for _ in range(config.blocks_per_stage)]
        layers += [nn.GroupNorm(8, c[3]), nn.SiLU(), nn.Conv2d(c[3], len(config.levels), 1)]
        self.encoder = nn.Sequential(*layers)
        self.quantizer = FSQ(config.levels)

        d = config.decoder_channels
        up: list[nn.Module] = [nn.Conv2d(len(config.levels), d[0], 3, padding=1), ResBlock(d[0], d[0])]
        for i in range(3):  # 16 -> 32 -> 64 -> 64
            if i < 2:
                up.append(nn.Upsample(scale_factor=2, mode="nearest"))
            up += [nn.Conv2d(d[i], d[i + 1], 3, padding=1), ResBlock(d[i + 1], d[i + 1])]
        # the last 4x is a pixel shuffle: each 64x64 cell's 4x4 pixels come from its own channels
        up += [nn.GroupNorm(8, d[3]), nn.SiLU(), nn.Conv2d(d[3], 3 * 16, 3, padding=1), nn.PixelShuffle(4)]
        self.decoder = nn.Sequential(*up)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, 3, 256, 256) in [-1, 1] -> ids (B, 16, 16)."""
        return self.quantizer(self.encoder(frames))[1]

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, 16, 16) -> frames (B, 3, 256, 256) in about [-1, 1]."""
        return self.decoder(self.quantizer.ids_to_codes(ids))

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frames -> (reconstruction, ids); gradients reach the encoder through the rounding."""
        codes, ids = self.quantizer(self.encoder(frames))
        return self.decoder(codes), ids


def codebook_usage(ids: torch.Tensor, vocab_size: int) -> dict[str, float]:
    """How much of the vocabulary a batch of ids uses: the share of ids ever used and the
    perplexity of their distribution (vocab_size at best, 1 when collapsed)."""
    counts = torch.bincount(ids.flatten(), minlength=vocab_size).float()
    probs = counts / counts.sum()
    entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum()
    return {"used_fraction": (counts > 0).float().mean().item(), "perplexity": entropy.exp().item()}


def rare_colour_mask(frames: torch.Tensor, share: float = 0.02) -> torch.Tensor:
    """(N, 3, H, W) frames in [-1, 1] -> (N, 1, H, W), 1 where the pixel's colour (8 levels per
    channel) covers less than `share` of its own frame: the player, coins and enemies of a 2D game."""
    n, _, h, w = frames.shape
    levels = ((frames.detach() + 1) * 3.999).clamp(0, 7).long()
    keys = levels[:, 0] * 64 + levels[:, 1] * 8 + levels[:, 2]  # (N, H, W) in 0..511
    keys = keys + 512 * torch.arange(n, device=frames.device).view(n, 1, 1)
    counts = torch.bincount(keys.flatten(), minlength=512 * n)
    return (counts[keys] < share * h * w).unsqueeze(1).to(frames.dtype)


def reconstruction_loss(
    recon: torch.Tensor, frames: torch.Tensor, rare_weight: float = 0.0, extra_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """L1 + MSE: L1 keeps flat 2D colours sharp, MSE punishes the rare large error.

    rare_weight > 0 weighs pixels of rare colours (rare_colour_mask) 1 + rare_weight times as
    much: sprites are 1-2% of a frame, so an unweighted loss is nearly blind to them, yet they
    are what the actions move. extra_weight (N, 1, H, W), if given, is added to each pixel's weight."""
    if not rare_weight and extra_weight is None:
        return F.l1_loss(recon, frames) + F.mse_loss(recon, frames)
    weight = 1 + rare_weight * rare_colour_mask(frames)
    if extra_weight is not None:
        weight = weight + extra_weight
    diff = recon - frames
    return ((diff.abs() + diff.pow(2)) * weight).sum() / (weight.sum() * frames.shape[1])
