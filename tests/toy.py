"""A tiny deterministic action-driven world for learning tests: one sprite on a G x G torus
of tokens, moved one cell per frame by the direction part of each of the 18 actions."""

import torch

from core.actions import NUM_ACTIONS, to_buttons

BACKGROUND, SPRITE = 0, 1
_DELTAS = torch.tensor(
    [[("DOWN" in b) - ("UP" in b), ("RIGHT" in b) - ("LEFT" in b)] for b in map(to_buttons, range(NUM_ACTIONS))]
)  # (18, 2) row/col moves


def sprite_clips(
    batch: int,
    frames: int,
    grid: int = 8,
    generator: torch.Generator | None = None,
    background: int = BACKGROUND,
    sprite: int = SPRITE,
    speed: int = 1,
):
    """-> tokens (batch, frames, grid*grid), actions (batch, frames): actions[:, t] moves frame t to t+1.
    `background`, `sprite` and `speed` (cells per frame; negative runs against the keys) make variants
    of the game for fine-tuning tests."""
    actions = torch.randint(0, NUM_ACTIONS, (batch, frames), generator=generator)
    position = torch.randint(0, grid, (batch, 2), generator=generator)
    tokens = torch.full((batch, frames, grid * grid), background)
    for t in range(frames):
        tokens[torch.arange(batch), t, position[:, 0] * grid + position[:, 1]] = sprite
        position = (position + speed * _DELTAS[actions[:, t]]) % grid
    return tokens, actions
