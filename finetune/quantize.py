"""An 8- or 4-bit base for LoRA on CUDA (QLoRA, Dettmers et al. 2023) through bitsandbytes.

The dynamics' block Linear layers are swapped for bitsandbytes' Linear8bitLt / Linear4bit (NF4,
bf16 compute) holding the same weights; moving them to the GPU is what quantizes them. The
output head and the embeddings stay in full precision (they are small, and the head makes the
logits). peft wraps bnb layers with its own LoRA layers only when the model says it is loaded in
k-bit, which a custom module must set itself (`is_loaded_in_4bit` / `is_loaded_in_8bit`).
Only the frozen base is quantized: the adapter trains and is saved in full precision, so it
loads onto the ordinary fp32 base for play.
"""

from __future__ import annotations

import torch
import torch.nn as nn

QUANTIZE = ("none", "8bit", "4bit")


class QuantizationUnavailable(ValueError):
    """A k-bit base was asked for where it cannot run (no CUDA GPU, or no bitsandbytes)."""


def check_quantization(mode: str) -> None:
    """Raise QuantizationUnavailable (saying what to do) unless `mode` can run here."""
    if mode not in QUANTIZE:
        raise ValueError(f"--quantize must be one of {', '.join(QUANTIZE)}, got {mode!r}")
    if mode == "none":
        return
    if not torch.cuda.is_available():
        raise QuantizationUnavailable(
            f"--quantize {mode} (QLoRA) needs a CUDA GPU, and none is visible to torch here; "
            "on CPU fine-tune with --quantize none (the default)"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise QuantizationUnavailable(
            f"--quantize {mode} needs bitsandbytes: pip install 'pocketworld[quant]' "
            "(or fine-tune with --quantize none)"
        ) from None


def quantize_dynamics(dynamics: nn.Module, mode: str, device: str | torch.device = "cuda") -> nn.Module:
    """Swap the Linear layers of `dynamics.blocks` for bitsandbytes k-bit layers (core.engine's swap, with
    LLM.int8's outlier threshold for 8-bit) on `device`, which quantizes them; returns it, flagged for peft."""
    check_quantization(mode)
    from core.engine import bitsandbytes_linears

    for block in dynamics.blocks:  # not the output head: it makes the logits
        bitsandbytes_linears(block, 4 if mode == "4bit" else 8, device, threshold=6.0)
    dynamics = dynamics.to(device)
    setattr(dynamics, "is_loaded_in_4bit" if mode == "4bit" else "is_loaded_in_8bit", True)
    return dynamics
