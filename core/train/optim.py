"""Optimizer, learning-rate schedule and weight EMA for the training loop.

AdamW with weight decay on matrices only (biases, norms and embeddings' 1-D gains are not
decayed), as in nanoGPT's `configure_optimizers`. The schedule is linear warmup then cosine
or linear decay (Loshchilov & Hutter 2017), computed from the step alone, so resuming needs
no scheduler object. The EMA keeps a shadow copy of the weights (Polyak averaging) that is
validated and exported instead of the raw weights when it is on.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch

from core.train.config import OptimSection


def build_optimizer(module: torch.nn.Module, config: OptimSection) -> torch.optim.AdamW:
    params = [p for p in module.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2))


def lr_at(step: int, total: int, config: OptimSection, time_spent: float = 0.0) -> float:
    """Learning rate for optimizer step `step` (0-based) of `total`; `time_spent` (0-1) is the share of a time
    budget used, which with optim.decay_over: budget moves the decay on when it is ahead of the steps."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    progress = min(1.0, (step - config.warmup_steps) / max(1, total - config.warmup_steps))
    if config.decay_over == "budget":
        progress = max(progress, min(1.0, time_spent))
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if config.schedule == "cosine" else 1 - progress
    floor = config.min_lr_ratio
    return config.lr * (floor + (1 - floor) * shape)


class EMA:
    """Exponential moving average of a module's floating-point weights.

    The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates: a fixed 0.999 over a
    300-step run would leave 0.999^300 = 74% of the initial weights in the average (our nano v0
    dynamics shipped mostly untrained that way). Frozen parameters are not averaged (they do not change): a LoRA
    fine-tune's average is its adapter's weights, not a copy of the whole base updated every step."""

    COUNT_KEY = "__ema_updates__"  # the number of updates so far, saved beside the weights

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        frozen = {name for name, p in module.named_parameters() if not p.requires_grad}
        self.shadow = {
            k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point() and k not in frozen
        }

    def to(self, device) -> EMA:
        """Keep the average where the weights are: it is made from the model before it moves to the GPU."""
        self.shadow = {k: v.to(device) for k, v in self.shadow.items()}
        return self

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        weight = 1 - self.current_decay()
        for key, value in module.state_dict().items():
            if key in self.shadow:
                self.shadow[key].lerp_(value.detach(), weight)
        self.updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**self.shadow, self.COUNT_KEY: torch.tensor(self.updates, dtype=torch.int64)}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        tensors = dict(tensors)
        # a checkpoint from before the counter holds an average biased to its start: restart the warm-up
        self.updates = int(tensors.pop(self.COUNT_KEY, torch.tensor(0)))
        # a checkpoint from before frozen weights were left out holds them too: unchanged, they are not needed
        if not set(self.shadow) <= set(tensors):
            raise ValueError("EMA weights in the checkpoint do not match the model")
        for key in self.shadow:
            self.shadow[key].copy_(tensors[key])

    @contextmanager
    def applied(self, module: torch.nn.Module):
        """Temporarily load the averaged weights into `module` (for validation and export)."""
        saved = {k: v.detach().clone() for k, v in module.state_dict().items() if k in self.shadow}
        module.load_state_dict(self.shadow, strict=False)
        try:
            yield module
        finally:
            module.load_state_dict(saved, strict=False)
