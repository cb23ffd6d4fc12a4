"""Frame decoder: next-frame tokens (16x16) + the previous frame -> the next 256x256 frame.

A light U-Net (Ronneberger et al. 2015): the previous frame is encoded down to 16x16 and its
features join the decoder at every scale as skips, while the tokens enter at the bottom.
In a 2D game most of a frame's detail is already in the previous frame, so the tokens only
have to say what moved; the output is the previous frame plus a predicted change.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.config import DecoderConfig
from core.tokenizer import ResBlock


class FrameDecoder(nn.Module):
    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.config = config
        c = config.channels  # widths at 256, 128, 64, 32, 16 pixels
        self.token_embedding = nn.Embedding(config.vocab_size, config.token_dim)
        # previous-frame encoder: full resolution stem, then four strided convs down to 16x16
        self.stem = nn.Conv2d(3, c[0], 3, padding=1)
        self.down = nn.ModuleList(nn.Conv2d(c[i], c[i + 1], 3, stride=2, padding=1) for i in range(4))
        self.mid = nn.Sequential(
            ResBlock(config.token_dim + c[4], c[4]), *[ResBlock(c[4], c[4]) for _ in range(config.blocks - 1)]
        )
        # upsampling path, 16 -> 256; each level: upsample, conv, fuse the skip of the same scale
        self.up_convs = nn.ModuleList(nn.Conv2d(c[i + 1], c[i], 3, padding=1) for i in reversed(range(4)))
        self.fuse = nn.ModuleList()
        for i in reversed(range(4)):
            if i == 0:  # full resolution is where time goes: one plain conv, no residual blocks
                self.fuse.append(nn.Sequential(nn.SiLU(), nn.Conv2d(2 * c[0], c[0], 3, padding=1), nn.SiLU()))
            else:
                self.fuse.append(
                    nn.Sequential(ResBlock(2 * c[i], c[i]), *[ResBlock(c[i], c[i]) for _ in range(config.blocks - 1)])
                )
        self.to_rgb = nn.Conv2d(c[0], 3, 3, padding=1)
        nn.init.zeros_(self.to_rgb.weight)  # start as "nothing changed": output = previous frame
        nn.init.zeros_(self.to_rgb.bias)

    def forward(self, tokens: torch.Tensor, prev_frames: torch.Tensor) -> torch.Tensor:
        """tokens (B, 16, 16) ids, prev_frames (B, 3, 256, 256) in [-1, 1] -> frames (B, 3, 256, 256)."""
        skips = [F.silu(self.stem(prev_frames))]  # (B, c0, 256, 256)
        for down in self.down:
            skips.append(F.silu(down(skips[-1])))  # ... down to (B, c4, 16, 16)
        x = self.token_embedding(tokens).permute(0, 3, 1, 2)  # (B, token_dim, 16, 16)
        x = self.mid(torch.cat([x, skips[4]], dim=1))  # (B, c4, 16, 16)
        for level, (up_conv, fuse) in zip(reversed(range(4)), zip(self.up_convs, self.fuse)):
            x = up_conv(F.interpolate(x, scale_factor=2, mode="nearest"))
            x = fuse(torch.cat([x, skips[level]], dim=1))  # (B, c_level, 2x, 2x)
        return prev_frames + self.to_rgb(x)
