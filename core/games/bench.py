"""Game speed benchmark: frames/s per built-in game at 256x256, rendering included, on one core.

Random sticky actions drive N envs in one process; finished envs restart on new seeds inside the
timed loop, so level generation counts too. `pocketworld bench games` prints the table.
"""

from __future__ import annotations

import time

import numpy as np


def bench_games(num_envs: int = 32, steps: int = 150, seed: int = 0, repeats: int = 3) -> list[dict]:
    """One row per game: frames/s (best of `repeats` runs of `steps` steps of `num_envs` envs)."""
    from core.agents.random_play import RandomAgent
    from core.games import GAMES, GameConfig

    rows = []
    for name, cls in GAMES.items():
        best = 0.0
        for _ in range(repeats):
            game = cls(GameConfig(num_envs=num_envs))
            agent = RandomAgent(num_envs, seed=seed)
            next_seed = seed + num_envs
            game.reset(np.arange(seed, next_seed))
            start = time.perf_counter()
            for _ in range(steps):
                frames, done = game.step(agent.act(game))
                if done.any():
                    ids = np.flatnonzero(done)
                    game.reset(np.arange(next_seed, next_seed + len(ids)), ids)
                    next_seed += len(ids)
            best = max(best, steps * num_envs / (time.perf_counter() - start))
        assert frames.shape == (num_envs, 256, 256, 3)
        rows.append({"game": name, "num_envs": num_envs, "frames_per_second": round(best, 1)})
    return rows
