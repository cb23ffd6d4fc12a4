"""Conversions between frames as games and users hold them and as the networks read them.

Outside the model a frame is a uint8 array (H, W, 3); inside it is a float tensor
(B, 3, H, W) in [-1, 1]. Checking happens here so every entry point gives the same error.
"""

from __future__ import annotations

import numpy as np
import torch


class FrameError(ValueError):
    """A frame with the wrong shape, dtype or value range."""


def check_frame(frame, size: int = 256) -> np.ndarray:
    """Return `frame` as a (size, size, 3) uint8 array, or raise FrameError saying what is wrong."""
    if isinstance(frame, torch.Tensor):
        frame = frame.detach().cpu().numpy()
    if not isinstance(frame, np.ndarray):
        raise FrameError(
            f"expected a frame as a numpy array of shape ({size}, {size}, 3) uint8, got {type(frame).__name__}"
        )
    if frame.shape != (size, size, 3):
        raise FrameError(
            f"expected a frame of shape ({size}, {size}, 3) (height, width, RGB), got {frame.shape}; "
            f"resize or letterbox it to {size}x{size} first"
        )
    if frame.dtype != np.uint8:
        raise FrameError(f"expected a uint8 frame (0..255), got dtype {frame.dtype}")
    return frame


def to_model(frames: np.ndarray | torch.Tensor, device=None) -> torch.Tensor:
    """uint8 frames (..., H, W, 3) -> float (N, 3, H, W) in [-1, 1]."""
    frames = torch.as_tensor(frames, device=device)
    assert frames.dtype == torch.uint8, frames.dtype
    frames = frames.reshape(-1, *frames.shape[-3:])
    return frames.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] -> uint8 numpy (N, H, W, 3)."""
    images = images.detach().float().add(1.0).mul_(127.5).round_().clamp_(0, 255)
    return images.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def changed_mask(frames: torch.Tensor, before: torch.Tensor, threshold: float = 0.05) -> torch.Tensor:
    """(N, 3, H, W) frames in [-1, 1] and the frames before them -> (N, 1, H, W): 1 where a channel changed by
    more than `threshold` (0.05 is ~6 of 255), i.e. where something moved."""
    return ((frames - before).abs().amax(1, keepdim=True) > threshold).to(frames.dtype)
