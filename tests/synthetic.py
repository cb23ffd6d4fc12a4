"""Synthetic 2D frames for model tests: flat backgrounds with a few solid sprites."""

import numpy as np


def sprite_frames(count: int, size: int = 256, seed: int = 0) -> np.ndarray:
    """(count, size, size, 3) uint8: a flat background colour per frame and 3 solid sprites."""
    rng = np.random.default_rng(seed)
    frames = np.empty((count, size, size, 3), np.uint8)
    for frame in frames:
        frame[:] = rng.integers(0, 256, 3)
        for _ in range(3):
            h, w = rng.integers(size // 8, size // 3, 2)
            y, x = rng.integers(0, size - h), rng.integers(0, size - w)
            frame[y : y + h, x : x + w] = rng.integers(0, 256, 3)
    return frames


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))
