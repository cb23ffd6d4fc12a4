"""Long-horizon stage: train the dynamics on its own predictions so that rollouts do not drift.

Teacher forcing shows the model only recorded frames, but at play time it reads its own
outputs; errors then compound (exposure bias). This stage uses scheduled sampling (Bengio et
al. 2015) in its parallel form (Duckworth et al. 2019, "Parallel Scheduled Sampling"), which
suits a model that predicts a whole clip in one pass: a no-grad pass predicts every frame,
a share of the context frames is replaced by those predictions, and `passes - 1` such rounds
feed the model predictions made from its own predictions (errors compounded that many frames
deep, as in self-forcing). The last pass, with gradients, is scored against the *recorded*
next frames, so the model learns to steer back. The share grows linearly from 0 to
`long_horizon.max_mix` over `ramp_steps`. Validation is the dynamics stage's, including the
open-loop rollout accuracy that this stage should raise.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from core.train.dynamics import DynamicsStage, next_token_loss


def sample_tokens(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """logits (..., V) -> ids (...): argmax at temperature 0, else a sample of softmax(logits / T)."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    return torch.multinomial(probs.flatten(0, -2), 1).view(logits.shape[:-1])


class SelfForcingObjective(nn.Module):
    def __init__(self, dynamics, passes: int, temperature: float):
        super().__init__()
        self.dynamics = dynamics
        self.passes, self.temperature = passes, temperature
        self.mix = 0.0  # share of context frames taken from the model's predictions (set per step)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        tokens, actions = batch["tokens"], batch["actions"]  # (B, T, S), (B, T)
        context = tokens[:, :-1]
        own = torch.rand(context.shape[:2], device=tokens.device) < self.mix  # (B, T-1) frames to replace
        own[:, 0] = False  # the first frame is always given
        with torch.no_grad():
            for _ in range(self.passes - 1):
                predicted = sample_tokens(self.dynamics(context, actions[:, :-1]), self.temperature)  # frames 1..T-1
                shifted = torch.cat([tokens[:, :1], predicted[:, :-1]], dim=1)  # aligned with context frames
                context = torch.where(own[..., None], shifted, tokens[:, :-1])
        logits = self.dynamics(context, actions[:, :-1])
        loss = next_token_loss(logits, tokens)
        accuracy = (logits.detach().argmax(-1) == tokens[:, 1:]).float().mean()
        return loss, {"loss": loss.detach(), "accuracy": accuracy, "mix": torch.tensor(self.mix)}


class LongHorizonStage(DynamicsStage):
    def __init__(self, config, model):
        super().__init__(config, model)
        options = config.long_horizon
        self.objective = SelfForcingObjective(model.dynamics, options.passes, options.temperature)

    def before_step(self, step):
        options = self.config.long_horizon
        self.objective.mix = options.max_mix * min(1.0, step / max(1, options.ramp_steps))


STAGE = LongHorizonStage
