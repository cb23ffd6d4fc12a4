"""The frames family's way between the 256x256 frame a player sees and the small frame the
dynamics works on: area pooling down (`FramePool`), and a U-Net up (`FrameUpsampler`).

The upsampler gets the predicted small frame and the previous full-size frame, which holds
most of a 2D scene's detail (tiles, text, sprites that did not move). Its stem sees, at full
size, the previous frame, the small frame scaled up and the scaled-up change from the previous
frame's small version: where something moved is then visible to the finest layers, which
otherwise learn to redraw the previous frame's sprite where it was (seen in nano v2's first
run: the 64x64 dream moved the player, the 256x256 one did not). The features go down to the
small size, are joined there by the small frame and its change again, and go back up with
the skips, as in the token decoder (core/decoder.py). The output is a base plus a predicted
change, zero at initialisation. The base is the previous frame, or (`decoder.base: blend`) that
frame with the small frame scaled up in its place where the small frame moved: a plain U-Net
learnt to draw moved pixels worse than bilinear scaling does (upsampler lab, README).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.config import FramePoolConfig, UpsamplerConfig
from core.tokenizer import ResBlock

GATE_GAIN = 20.0  # a small-frame change of 0.05 ([-1, 1] units) opens a gate fully
BLEND_GAIN = 8.0  # the blend's prior in logits: a closed gate starts at sigmoid(-4), an open one at sigmoid(4)
NOISE_FLOOR = 0.03  # mean absolute small-frame change (3x3, [-1, 1] units) below which nothing is taken to move


def changed_gate(small: torch.Tensor, prev_small: torch.Tensor) -> torch.Tensor:
    """(B, 1, r, r) in [0, 1]: 1 within a pixel of where the small frame changed, 0 where it did not."""
    changed = ((small - prev_small).abs().amax(1, keepdim=True) * GATE_GAIN).clamp(max=1)
    return F.max_pool2d(changed, 3, stride=1, padding=1)


def motion_prior(small: torch.Tensor, prev_small: torch.Tensor) -> torch.Tensor:
    """(B, 1, r, r) in [0, 1]: where the small frame changed by more than noise (a predicted small frame, or one
    the upsampler learns from with noise added, differs a little everywhere: its single pixels must not count)."""
    change = F.avg_pool2d((small - prev_small).abs().mean(1, keepdim=True), 3, stride=1, padding=1)
    return F.max_pool2d(((change - NOISE_FLOOR) * 25).clamp(0, 1), 3, stride=1, padding=1)


class FramePool(nn.Module):
    """Frames (B, 3, H, W) -> (B, 3, r, r) by area pooling; `decode` scales back up (bilinear)."""

    def __init__(self, config: FramePoolConfig):
        super().__init__()
        self.config = config

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        r = self.config.resolution
        return frames if frames.shape[-1] == r else F.interpolate(frames, size=(r, r), mode="area")

    def decode(self, small: torch.Tensor, size: int = 256) -> torch.Tensor:
        return F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)


class FrameUpsampler(nn.Module):
    def __init__(self, config: UpsamplerConfig):
        super().__init__()
        self.config = config
        c = config.channels
        self.stem = nn.Conv2d(9, c[0], 3, padding=1)  # previous frame, small frame and its change, at full size
        self.down = nn.ModuleList(nn.Conv2d(c[i], c[i + 1], 3, stride=2, padding=1) for i in range(len(c) - 1))
        # the small frame and its change join the previous frame's features at the small size
        self.mid = nn.Sequential(
            nn.Conv2d(c[-1] + 6, c[-1], 3, padding=1), *[ResBlock(c[-1], c[-1]) for _ in range(config.blocks)]
        )
        self.up_convs = nn.ModuleList(nn.Conv2d(c[i + 1], c[i], 3, padding=1) for i in reversed(range(len(c) - 1)))
        self.fuse = nn.ModuleList(
            nn.Sequential(nn.SiLU(), nn.Conv2d(2 * c[i], c[i], 3, padding=1), nn.SiLU())
            if i == 0  # full size: one conv
            else ResBlock(2 * c[i], c[i])
            for i in reversed(range(len(c) - 1))
        )
        self.to_rgb = nn.Conv2d(c[0], 3, 3, padding=1)
        nn.init.zeros_(self.to_rgb.weight)  # starts as "nothing changed": the previous frame
        nn.init.zeros_(self.to_rgb.bias)
        if config.base == "blend":  # corrects the blend's prior, in logits, at the small size
            self.blend = nn.Conv2d(c[-1], 1, 3, padding=1)
            nn.init.zeros_(self.blend.weight)
            nn.init.zeros_(self.blend.bias)
        if config.warp != "none":  # where each full-size pixel comes from in the previous frame (pixels; small size)
            self.flow = nn.Conv2d(c[-1], 2, 3, padding=1)
            nn.init.zeros_(self.flow.weight)  # no motion at first: the previous frame as it was
            nn.init.zeros_(self.flow.bias)
            size = config.image_size
            ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
            self.register_buffer("grid", torch.stack([xs, ys], -1)[None], persistent=False)  # (1, H, W, 2)

    def forward(self, small: torch.Tensor, prev_frames: torch.Tensor) -> torch.Tensor:
        """small (B, 3, r, r) the next frame, small; prev_frames (B, 3, H, W) in [-1, 1] -> (B, 3, H, W)."""
        # fixed scale factors, not sizes: ONNX exports only those
        factor = self.config.image_size // self.config.resolution
        prev_small = F.avg_pool2d(prev_frames, factor)  # (B, 3, r, r)
        big = F.interpolate(
            torch.cat([small, small - prev_small], dim=1), scale_factor=factor, mode="bilinear", align_corners=False
        )  # (B, 6, H, W)
        skips = [F.silu(self.stem(torch.cat([prev_frames, big], dim=1)))]  # (B, c0, H, W)
        for down in self.down:
            skips.append(F.silu(down(skips[-1])))  # ... down to (B, c_last, r, r)
        x = self.mid(torch.cat([skips[-1], small, small - prev_small], dim=1))  # (B, c_last, r, r)
        base = prev_frames
        if self.config.warp != "none":
            flow = self.flow(x)  # (B, 2, r, r)
            if self.config.warp == "gated":
                flow = flow * changed_gate(small, prev_small)
            flow = F.interpolate(flow, scale_factor=factor, mode="bilinear", align_corners=False)
            offset = flow.permute(0, 2, 3, 1) * (2 / (self.config.image_size - 1))  # pixels -> grid units
            base = F.grid_sample(
                prev_frames, self.grid + offset, mode="bilinear", padding_mode="border", align_corners=True
            )  # (B, 3, H, W)
        if self.config.base == "blend":
            # a learnt correction to the prior "where the small frame moved": a fixed gate alone opened on the
            # noise of predicted small frames (blend lab)
            logit = self.blend(x) + BLEND_GAIN * (motion_prior(small, prev_small) - 0.5)
            gate = F.interpolate(torch.sigmoid(logit), scale_factor=factor, mode="bilinear", align_corners=False)
            base = base + gate * (big[:, :3] - base)
        for level, up_conv, fuse in zip(reversed(range(len(self.up_convs))), self.up_convs, self.fuse):
            x = up_conv(F.interpolate(x, scale_factor=2, mode="nearest"))
            x = fuse(torch.cat([x, skips[level]], dim=1))  # (B, c_level, 2h, 2w)
        return base + self.to_rgb(x)
