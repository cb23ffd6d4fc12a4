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
