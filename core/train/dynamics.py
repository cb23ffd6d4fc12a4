"""Dynamics stage: next-frame token prediction over action-conditioned clips of frozen tokens.

The dynamics reads token shards made once by the tokens stage (core/train/tokens.py), so the
encoder never runs here. Loss: cross-entropy of the logits for frame t+1 (all 256 positions in
one pass) against the recorded tokens, teacher-forced over the clip, as in IRIS / Genie.
Validation: loss and accuracy on held-out level seeds, accuracy on the positions that change
(most tokens of a 2D frame are static background, so plain accuracy flatters), and the
accuracy of an open-loop argmax rollout from the first frame under the recorded actions
(how far the model drifts when fed its own predictions).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.dynamics import Dynamics
from core.train.data import DataError
from core.train.loop import Stage


def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor, changed_weight: float = 0.0) -> torch.Tensor:
    """logits (B, T-1, S, V) for frames 1..T-1, tokens (B, T, S) -> mean cross-entropy.

    changed_weight > 0 weighs the positions whose token changes from frame t to t+1 by 1 + changed_weight:
    they are the few that carry the actions' effect (nano v1 reached 80% accuracy at step 200 by copying,
    with 0.6% on changed positions)."""
    losses = F.cross_entropy(logits.flatten(0, 2).float(), tokens[:, 1:].flatten(), reduction="none")
    if not changed_weight:
        return losses.mean()
    weight = 1 + changed_weight * (tokens[:, 1:] != tokens[:, :-1]).flatten().float()
    return (losses * weight).sum() / weight.sum()


@torch.no_grad()
def rollout_accuracy(dynamics: Dynamics, tokens: torch.Tensor, actions: torch.Tensor, frames: int) -> torch.Tensor:
    """Open-loop argmax rollout from tokens[:, 0] under `actions`; -> per-clip accuracy (B,) over
    the `frames` predicted frames against the recorded ones."""
    frames = min(frames, tokens.shape[1] - 1)
    state = dynamics.init_state(tokens.shape[0], device=tokens.device)
    current, correct = tokens[:, 0], 0.0
    for t in range(frames):
        logits, state = dynamics.step(current, actions[:, t], state)
        current = logits.argmax(-1)                                   # (B, S)
        correct = correct + (current == tokens[:, t + 1]).float().mean(1)
    return correct / frames


class DynamicsObjective(nn.Module):
    def __init__(self, dynamics: Dynamics, changed_weight: float = 0.0):
        super().__init__()
        self.dynamics = dynamics
        self.changed_weight = changed_weight

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        tokens, actions = batch["tokens"], batch["actions"]          # (B, T, S), (B, T)
        logits = self.dynamics(tokens[:, :-1], actions[:, :-1])       # (B, T-1, S, V)
        loss = next_token_loss(logits, tokens, self.changed_weight)
        accuracy = (logits.detach().argmax(-1) == tokens[:, 1:]).float().mean()
        return loss, {"loss": loss.detach(), "accuracy": accuracy}


class DynamicsStage(Stage):
    data_kind = "tokens"
    val_metrics = ("loss", "accuracy", "changed_accuracy", "rollout_accuracy")

    def __init__(self, config, model):
        super().__init__(config, model)
        self.objective = DynamicsObjective(model.dynamics, config.train.changed_token_weight)

    def check_data(self, refs):
        from core.train.tokens import tokenizer_fingerprint

        mine = tokenizer_fingerprint(self.model.tokenizer)
        theirs = {ref.meta.get("tokenizer") for ref in refs}
        if theirs != {mine}:
            raise DataError(
                f"the token shards were encoded by tokenizer(s) {sorted(map(str, theirs))}, but this model's "
                f"tokenizer is {mine}: set model.init to the model the tokens stage used, or re-run the tokens stage")

    def validate(self, batch):
        dynamics = self.model.dynamics
        tokens, actions = batch["tokens"], batch["actions"]
        logits = dynamics(tokens[:, :-1], actions[:, :-1])
        predicted, target = logits.argmax(-1), tokens[:, 1:]
        changed = target != tokens[:, :-1]
        n = target.numel()
        rollout = rollout_accuracy(dynamics, tokens, actions, self.config.long_horizon.rollout_frames)
        return {"loss": (next_token_loss(logits, tokens).item() * n, n),
                "accuracy": ((predicted == target).sum().item(), n),
                "changed_accuracy": ((predicted == target)[changed].sum().item(), changed.sum().item()),
                "rollout_accuracy": (rollout.sum().item(), len(rollout))}


STAGE = DynamicsStage
