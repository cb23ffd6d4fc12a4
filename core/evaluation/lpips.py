"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric"), v0.1: ImageNet AlexNet or VGG16 features, unit-normalised per channel, squared
differences weighted by learned 1x1 linear heads, averaged over space and summed over 5 layers.

The network follows the reference `lpips` package layer for layer, so its weights load
unchanged. File format: one safetensors file holding `lpips.LPIPS(net=...).state_dict()` --
the backbone slices (`net.slice1.0.weight`, ...) and heads (`lin0.model.1.weight`, ...);
its constant `scaling_layer.*` buffers may be present. Convert once, on a machine you trust:
`save_file(lpips.LPIPS(net="alex").state_dict(), "lpips_alex.safetensors")`. Loading is strict.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file

from core.world_model import WeightsError

FILES = {"alex": "lpips_alex.safetensors", "vgg": "lpips_vgg.safetensors"}
_SHIFT = (-0.030, -0.088, -0.188)  # the reference ScalingLayer: inputs in [-1, 1] -> ImageNet statistics
_SCALE = (0.458, 0.448, 0.450)


def _features(net: str) -> tuple[list[nn.Module], list[int], list[int]]:
    """torchvision's AlexNet / VGG16 `features` layers, the slice boundaries and their widths."""
    if net == "alex":
        layers = [
            nn.Conv2d(3, 64, 11, 4, 2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(),
        ]
        return layers, [0, 2, 5, 8, 10, 12], [64, 192, 384, 256, 256]
    if net == "vgg":
        layers, c_in = [], 3
        for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512):
            if width == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU()]
                c_in = width
        return layers, [0, 4, 9, 16, 23, 30], [64, 128, 256, 512, 512]
    raise ValueError(f"unknown LPIPS network {net!r}; choose one of {', '.join(FILES)}")


class _Linear(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))  # keys lin{k}.model.1.weight


class _Backbone(nn.Module):
    def __init__(self, layers: list[nn.Module], bounds: list[int]):
        super().__init__()
        for k in range(5):  # slice{k+1} keeps torchvision's layer indices as module names
            setattr(
                self,
                f"slice{k + 1}",
                nn.Sequential(OrderedDict((str(i), layers[i]) for i in range(bounds[k], bounds[k + 1]))),
            )

    def forward(self, x):
        outs = []
        for k in range(5):
            x = getattr(self, f"slice{k + 1}")(x)
            outs.append(x)
        return outs


class LPIPS(nn.Module):
    def __init__(self, net: str = "alex"):
        super().__init__()
        layers, bounds, widths = _features(net)
        self.net_name = net
        self.net = _Backbone(layers, bounds)
        for k, width in enumerate(widths):
            setattr(self, f"lin{k}", _Linear(width))
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b float (N, 3, H, W) in [-1, 1] -> (N,) distances."""
        fa, fb = self.net((a - self.shift) / self.scale), self.net((b - self.shift) / self.scale)
        total = 0
        for k, (x, y) in enumerate(zip(fa, fb)):
            x = x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            y = y / (y.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + getattr(self, f"lin{k}").model((x - y) ** 2).mean((2, 3))
        return total[:, 0]

    @torch.inference_mode()
    def distance(self, real: np.ndarray, generated: np.ndarray, batch: int = 16) -> np.ndarray:
        """uint8 frames (N, H, W, 3) pairs -> (N,) LPIPS."""
        from core.frames import to_model

        self.eval()
        out = [
            self(to_model(real[i : i + batch]), to_model(generated[i : i + batch])).numpy()
            for i in range(0, len(real), batch)
        ]
        return np.concatenate(out) if out else np.zeros(0, np.float32)


def load_lpips(path: str | Path, net: str = "alex") -> LPIPS:
    """An LPIPS network with the weights of a safetensors file in the reference layout (strict)."""
    model = LPIPS(net)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise WeightsError(f"{path}: not a readable safetensors file ({err})") from None
    tensors = {k: v for k, v in tensors.items() if not k.startswith("scaling_layer.")}
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise WeightsError(f"{path}: not LPIPS-{net} weights: missing {missing[:4]}, unexpected {unexpected[:4]}")
    for key, value in tensors.items():
        if value.shape != expected[key].shape:
            raise WeightsError(
                f"{path}: {key} has shape {tuple(value.shape)}, LPIPS-{net} needs {tuple(expected[key].shape)}"
            )
    model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    return model.eval()
