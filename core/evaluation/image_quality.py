"""Per-frame image quality: PSNR and SSIM between real and generated uint8 frames.

SSIM follows Wang et al. 2004 with the settings of scikit-image's
`structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=255, channel_axis=-1)`: an 11x11 Gaussian window (sigma 1.5, truncated at 3.5
sigma), SSIM per channel, averaged over the pixels a full window covers and then over the
channels. We compute it in torch (two matmuls per statistic) because evaluation scores
thousands of 256x256 frames; tests hold it to scikit-image.
"""

from __future__ import annotations

import numpy as np
import torch

PSNR_CAP = 100.0  # dB given to identical frames (PSNR is infinite there), so means stay finite
_SIGMA, _TRUNCATE = 1.5, 3.5
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def _as_float(frames) -> torch.Tensor:
    """uint8 (..., H, W, 3) numpy or tensor -> float32 (N, 3, H, W) in 0..255."""
    frames = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames)
    if frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 (0..255), got {frames.dtype}")
    return frames.reshape(-1, *frames.shape[-3:]).permute(0, 3, 1, 2).float()


def _check_pair(real, generated) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _as_float(real), _as_float(generated)
    if a.shape != b.shape:
        raise ValueError(f"real and generated frames differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    return a, b


def psnr(real, generated) -> np.ndarray:
    """PSNR in dB of each frame pair: real, generated uint8 (..., H, W, 3) -> (N,) float."""
    a, b = _check_pair(real, generated)
    mse = (a - b).pow(2).flatten(1).mean(1)  # (N,)
    values = 10 * torch.log10(255.0**2 / mse.clamp_min(1e-30))
    return values.clamp(max=PSNR_CAP).numpy()


def masked_psnr(x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, peak: float = 2.0) -> torch.Tensor:
    """PSNR in dB (capped) over the pixels where mask (N, 1, H, W) is 1, pooled over the batch: x, target
    (N, C, H, W) spanning `peak` (2 for the model's [-1, 1], 255 for uint8 values). An empty mask scores the cap."""
    count = mask.sum() * x.shape[1]
    if count == 0:
        return torch.tensor(PSNR_CAP)
    mse = ((x - target).pow(2) * mask).sum() / count
    return (10 * torch.log10(peak**2 / mse.clamp_min(1e-30))).clamp(max=PSNR_CAP)


def _gaussian_window() -> torch.Tensor:
    radius = int(_TRUNCATE * _SIGMA + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    window = torch.exp(-(x**2) / (2 * _SIGMA**2))
    return window / window.sum()  # (11,)


def ssim(real, generated) -> np.ndarray:
    """SSIM of each frame pair: real, generated uint8 (..., H, W, 3) -> (N,) float in [-1, 1]."""
    a, b = _check_pair(real, generated)
    n, c, h, w = a.shape
    window = _gaussian_window()
    size = len(window)
    if h < size or w < size:
        raise ValueError(f"SSIM needs frames of at least {size}x{size} pixels, got {h}x{w}")

    def band(length):  # (length, length - size + 1): column j sums window taps over rows j..j+size-1
        matrix = torch.zeros(length, length - size + 1)
        for j in range(length - size + 1):
            matrix[j : j + size, j] = window
        return matrix

    # separable Gaussian over the "valid" region only (the crop scikit-image averages over), as two
    # matmuls: a single-channel conv2d takes torch's slow path and costs ~50x more here
    rows, cols = band(h), band(w)
    stack = torch.cat([a, b, a * a, b * b, a * b], 0)  # (5N, 3, H, W)
    stats = (rows.T @ stack @ cols).view(5, n, c, h - size + 1, w - size + 1)
    mu_a, mu_b, aa, bb, ab = stats
    var_a, var_b, cov = aa - mu_a**2, bb - mu_b**2, ab - mu_a * mu_b
    s = ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2)) / ((mu_a**2 + mu_b**2 + _C1) * (var_a + var_b + _C2))
    return s.mean(dim=(2, 3)).mean(1).numpy()  # per channel, then channels
