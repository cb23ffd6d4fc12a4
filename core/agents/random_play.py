"""Random play with sticky actions: the baseline agent, and the one that covers every action.

Each frame an env keeps its previous action with probability `repeat` and otherwise draws one
of the 18 uniformly, so actions last a few frames (as a person's would, which makes their
effect visible) while every action stays equally represented.
"""

from __future__ import annotations

import numpy as np

from core.actions import NUM_ACTIONS


class RandomAgent:
    name = "random"

    def __init__(self, num_envs: int, seed: int = 0, repeat: float = 0.75):
        if not 0.0 <= repeat < 1.0:
            raise ValueError(f"repeat must be in [0, 1), got {repeat}")
        self.rng = np.random.default_rng(seed)
        self.repeat = repeat
        self.actions = self.rng.integers(0, NUM_ACTIONS, num_envs)

    def reset(self, env_ids) -> None:
        self.actions[env_ids] = self.rng.integers(0, NUM_ACTIONS, len(env_ids))

    def act(self, game) -> np.ndarray:
        change = self.rng.random(len(self.actions)) >= self.repeat
        self.actions = np.where(change, self.rng.integers(0, NUM_ACTIONS, len(self.actions)), self.actions)
        return self.actions.copy()


class HeldRandomAgent:
    """Random actions held for a uniformly drawn 1..`max_hold` frames, blind to the game state.

    The data a world model learns control from: the next key cannot be guessed from the
    player's past motion (scripted play can be, so a model may learn to ignore the key), and
    a held key shows its effect over several frames (as Genie's and DIAMOND's random data)."""

    name = "held"

    def __init__(self, num_envs: int, seed: int = 0, max_hold: int = 8):
        if max_hold < 1:
            raise ValueError(f"max_hold must be >= 1, got {max_hold}")
        self.rng = np.random.default_rng(seed)
        self.max_hold = max_hold
        self.actions = self.rng.integers(0, NUM_ACTIONS, num_envs)
        self.left = self.rng.integers(1, max_hold + 1, num_envs)  # frames the current action still lasts

    def reset(self, env_ids) -> None:
        self.left[env_ids] = 0

    def act(self, game) -> np.ndarray:
        change = self.left <= 0
        count = int(change.sum())
        self.actions[change] = self.rng.integers(0, NUM_ACTIONS, count)
        self.left[change] = self.rng.integers(1, self.max_hold + 1, count)
        self.left -= 1
        return self.actions.copy()
