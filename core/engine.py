"""Play engines: a WorldModel prepared for fast inference at a chosen precision and decoder backend.

What pays on a 2-core CPU was measured lever by lever (`pocketworld bench play --precision all`):
INT8 dynamic quantization of the dynamics' Linear layers (torch's
`quantize_dynamic`, fbgemm kernels), the frame decoder in ONNX Runtime (its conv kernels beat
eager mkldnn on thin 256x256 layers) or, in torch, in channels_last. bf16 is kept for GPUs and
AMX CPUs; without AMX it is slower than fp32. On CUDA, int8 and nf4 are bitsandbytes layers.

The training model is never changed: `prepare` returns a prepared copy, cached per model, so
all play sessions of one loaded model share one copy.
"""

from __future__ import annotations

import copy
import importlib.util
import warnings
import weakref
from dataclasses import dataclass

import torch
import torch.nn as nn

from core.world_model import WorldModel

PRECISIONS = ("fp32", "bf16", "int8", "nf4")
DECODERS = ("torch", "onnx")


class EngineError(ValueError):
    """An engine option that cannot run here: an unknown name, a missing package, or no CUDA."""


@dataclass(frozen=True)
class EngineConfig:
    precision: str = "fp32"  # fp32 | bf16 | int8 (CPU: torch dynamic quantization; CUDA: bitsandbytes) | nf4 (CUDA)
    decoder: str = "torch"  # torch (channels_last) | onnx (ONNX Runtime on CPU; the `onnx` extra)

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise EngineError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.decoder not in DECODERS:
            raise EngineError(f"unknown decoder backend {self.decoder!r}; choose one of {', '.join(DECODERS)}")

    @property
    def name(self) -> str:
        return self.precision if self.decoder == "torch" else f"{self.precision}+{self.decoder}"

    @classmethod
    def parse(cls, name: str) -> EngineConfig:
        """ "int8+onnx" -> EngineConfig("int8", "onnx"); "fp32" -> EngineConfig("fp32", "torch")."""
        precision, _, decoder = name.partition("+")
        return cls(precision, decoder or "torch")


def default_engine() -> EngineConfig:
    """The best safe engine measured for play on CPU: fp32 (int8 was only ~1.1x faster and moved
    a random-weight rollout's frames to ~41 dB PSNR), with the ONNX Runtime decoder when it is
    installed (~1.16x the whole step, frames within ~1e-5 of torch's)."""
    has_onnx = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None
    return EngineConfig("fp32", "onnx" if has_onnx else "torch")


# model -> {(config, device): prepared copy}; weak, so a model dropped from the app's cache frees its copies
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def prepare(model: WorldModel, config: EngineConfig, device: str | torch.device = "cpu") -> WorldModel:
    """`model` ready to play under `config` on `device` (a copy, shared by later calls for the same model)."""
    device = torch.device(device)
    key = (config, str(device))
    copies = _prepared.setdefault(model, {})
    if key not in copies:
        copies[key] = _build(model, config, device)
    return copies[key]


def _build(model: WorldModel, config: EngineConfig, device: torch.device) -> WorldModel:
    if config.decoder == "onnx" and device.type != "cpu":
        raise EngineError("the onnx decoder runs on CPU only; on CUDA use decoder 'torch'")
    if config.precision == "nf4" and device.type != "cuda":
        raise EngineError("precision nf4 (bitsandbytes 4-bit) needs CUDA; on CPU use int8 or fp32")
    model = copy.deepcopy(model).eval().to(device)
    model.requires_grad_(False)
    if config.precision == "bf16":
        model.to(torch.bfloat16)
    elif config.precision in ("int8", "nf4") and device.type == "cuda":
        if importlib.util.find_spec("bitsandbytes") is None:
            raise EngineError(
                f"precision {config.precision} on CUDA needs bitsandbytes: pip install 'pocketworld[quant]'"
            )
        bitsandbytes_linears(model.dynamics, 8 if config.precision == "int8" else 4, device)
    elif config.precision == "int8":
        model.dynamics = _dynamic_int8(model.dynamics)
    # NHWC convs (the frames family's motion net: ~13.4 -> ~12.5 ms a step on 2 cores, and its move scores come out
    # squares-first, as play by objects reads them, with no copy); the other layers have no 4D weights to change
    model.dynamics.to(memory_format=torch.channels_last)
    if config.decoder == "onnx":
        from core.decoder_onnx import OnnxFrameDecoder

        model.decoder = OnnxFrameDecoder(model.decoder, model.config, threads=torch.get_num_threads())
    else:
        # NHWC: ~1.3-1.8x faster mkldnn convs at 8-32 channels (the decoder's 256x256 levels)
        model.decoder.to(memory_format=torch.channels_last)
    return model


def _dynamic_int8(module: nn.Module) -> nn.Module:
    """Linear weights in int8 per output channel, activations quantized per call: fbgemm's int8 GEMM.
    Per channel, not per tensor: it keeps more of a rollout's tokens equal to fp32's, at the same
    speed (`pocketworld bench play --precision int8` reports the agreement). torch.ao.quantization is
    deprecated in favour of torchao but still ships with torch 2.13; its deprecation warnings are silenced here."""
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError:
        raise EngineError(
            "this torch has no torch.ao.quantization.quantize_dynamic: precision int8 on CPU "
            "needs torch <= 2.13 (or use fp32)"
        ) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        return quantize_dynamic(module, {nn.Linear: per_channel_dynamic_qconfig})


def bitsandbytes_linears(module: nn.Module, bits: int, device: str | torch.device, threshold: float = 0.0) -> None:
    """Every nn.Linear under `module` replaced, in place, by bitsandbytes' 8-bit (LLM.int8, Dettmers et al.
    2022) or 4-bit NF4 layer holding the same weights, frozen; moving them to CUDA is what quantizes them.
    `threshold` > 0 keeps LLM.int8's outlier features in fp16 (8-bit only). The one k-bit swap: play's
    int8/nf4 engines and QLoRA's base (finetune.quantize) both use it."""
    import bitsandbytes as bnb

    assert bits in (4, 8), bits
    for name, child in module.named_children():
        if not isinstance(child, nn.Linear):
            bitsandbytes_linears(child, bits, device, threshold)
            continue
        bias = child.bias is not None
        if bits == 8:
            layer = bnb.nn.Linear8bitLt(
                child.in_features, child.out_features, bias=bias, has_fp16_weights=False, threshold=threshold
            )
            layer.weight = bnb.nn.Int8Params(child.weight.data.cpu(), requires_grad=False, has_fp16_weights=False)
        else:
            layer = bnb.nn.Linear4bit(
                child.in_features, child.out_features, bias=bias, compute_dtype=torch.bfloat16, quant_type="nf4"
            )
            layer.weight = bnb.nn.Params4bit(child.weight.data.cpu(), requires_grad=False, quant_type="nf4")
        if bias:
            layer.bias = nn.Parameter(child.bias.data.cpu(), requires_grad=False)
        setattr(module, name, layer.to(device))  # moving to CUDA is what quantizes the weights
