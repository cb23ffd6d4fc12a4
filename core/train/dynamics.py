"""Dynamics stage: next-frame token prediction over action-conditioned clips of frozen tokens.

The dynamics reads token shards made once by the tokens stage (core/train/tokens.py), so the
encoder never runs here. Loss: cross-entropy of the logits for frame t+1 (all 256 positions in
one pass) against the recorded tokens, teacher-forced over the clip, as in IRIS / Genie.
Validation: loss and accuracy on held-out level seeds, accuracy on the positions that change
(most tokens of a 2D frame are static background, so plain accuracy flatters), the loss with
every clip's actions swapped for another clip's (a model that ignores its actions loses
nothing: the gap between the two losses is how much the keys matter to it), and the accuracy
of an open-loop argmax rollout from the first frame under the recorded actions (how far the
model drifts when fed its own predictions).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.actions import NUM_ACTIONS
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


def shuffled_actions(actions: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """actions (B, T) -> the same shape with each clip given another clip's actions (a roll over the
    batch, so every clip's actions are real play but not its own); a batch of one gets uniformly
    random actions instead, seeded."""
    if actions.shape[0] > 1:
        return actions.roll(1, dims=0)
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, NUM_ACTIONS, actions.shape, generator=generator).to(actions.device)


def prediction_loss(output: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """The dynamics' loss of `output` for frames 1..T-1 of `inputs` (B, T, ...): cross-entropy of token
    logits (B, T-1, S, V) against ids (B, T, S), or the MSE of predicted small frames (B, T-1, 3, r, r)."""
    if inputs.is_floating_point():
        return F.mse_loss(output.float(), inputs[:, 1:].float())
    return next_token_loss(output, inputs)


@torch.no_grad()
def action_loss_gap(dynamics: nn.Module, inputs: torch.Tensor, actions: torch.Tensor) -> tuple[float, float]:
    """Teacher-forced loss of the frames in `inputs` (B, T, S) ids or (B, T, 3, r, r) small frames under
    their own actions (B, T) and under shuffled ones -> (loss_true, loss_shuffled). Equal losses mean
    the model ignores its actions."""
    true = prediction_loss(dynamics(inputs[:, :-1], actions[:, :-1]), inputs).item()
    shuffled = prediction_loss(dynamics(inputs[:, :-1], shuffled_actions(actions)[:, :-1]), inputs).item()
    return true, shuffled


@torch.no_grad()
def rollout_accuracy(dynamics: Dynamics, tokens: torch.Tensor, actions: torch.Tensor, frames: int) -> torch.Tensor:
    """Open-loop argmax rollout from tokens[:, 0] under `actions`; -> per-clip accuracy (B,) over
    the `frames` predicted frames against the recorded ones."""
    frames = min(frames, tokens.shape[1] - 1)
    state = dynamics.init_state(tokens.shape[0], device=tokens.device)
    current, correct = tokens[:, 0], 0.0
    for t in range(frames):
        logits, state = dynamics.step(current, actions[:, t], state)
        current = logits.argmax(-1)  # (B, S)
        correct = correct + (current == tokens[:, t + 1]).float().mean(1)
    return correct / frames


class DynamicsObjective(nn.Module):
    def __init__(self, dynamics: Dynamics, changed_weight: float = 0.0):
        super().__init__()
        self.dynamics = dynamics
        self.changed_weight = changed_weight

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        tokens, actions = batch["tokens"], batch["actions"]  # (B, T, S), (B, T)
        logits = self.dynamics(tokens[:, :-1], actions[:, :-1])  # (B, T-1, S, V)
        loss = next_token_loss(logits, tokens, self.changed_weight)
        accuracy = (logits.detach().argmax(-1) == tokens[:, 1:]).float().mean()
        return loss, {"loss": loss.detach(), "accuracy": accuracy}


class DynamicsStage(Stage):
    data_kind = "tokens"
    val_metrics = (
        "loss",
        "loss_shuffled_actions",
        "action_loss_gap",
        "accuracy",
        "changed_accuracy",
        "rollout_accuracy",
    )

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
                f"tokenizer is {mine}: set model.init to the model the tokens stage used, or re-run the tokens stage"
            )

    def validate(self, batch):
        dynamics = self.model.dynamics
        tokens, actions = batch["tokens"], batch["actions"]
        logits = dynamics(tokens[:, :-1], actions[:, :-1])
        predicted, target = logits.argmax(-1), tokens[:, 1:]
        changed = target != tokens[:, :-1]
        n = target.numel()
        rollout = rollout_accuracy(dynamics, tokens, actions, self.config.long_horizon.rollout_frames)
        loss = next_token_loss(logits, tokens).item()
        shuffled = next_token_loss(dynamics(tokens[:, :-1], shuffled_actions(actions)[:, :-1]), tokens).item()
        return {
            "loss": (loss * n, n),
            "loss_shuffled_actions": (shuffled * n, n),
            "action_loss_gap": ((shuffled - loss) * n, n),
            "accuracy": ((predicted == target).sum().item(), n),
            "changed_accuracy": ((predicted == target)[changed].sum().item(), changed.sum().item()),
            "rollout_accuracy": (rollout.sum().item(), len(rollout)),
        }


STAGE = DynamicsStage
