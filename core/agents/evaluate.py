"""Measure an agent: level coverage (distinct regions visited per episode) and its action histogram.

Games step without rendering here (agents read state, not pixels), so the numbers are cheap
to reproduce: `pocketworld bench agents`.
"""

from __future__ import annotations

import numpy as np

from core.actions import NUM_ACTIONS


def evaluate(
    game_name: str, agent, episodes: int = 16, seed: int = 10_000, num_envs: int = 8, max_steps: int = 900
) -> dict:
    """Play `episodes` levels (seeds seed, seed+1, ...) with `agent` (made for num_envs envs)."""
    from core.games import GAMES, GameConfig

    game = GAMES[game_name](GameConfig(num_envs=num_envs, max_steps=max_steps, render=False))
    seeds = list(range(seed, seed + episodes))
    game.reset(seeds[:num_envs])
    agent.reset(np.arange(num_envs))
    playing = np.array(seeds[:num_envs]) if episodes >= num_envs else np.array(seeds + [-1] * (num_envs - episodes))
    queue = seeds[num_envs:]
    visited = [{int(r)} for r in game.region()]
    counts = np.zeros(NUM_ACTIONS, dtype=np.int64)
    coverage, outcomes = [], {"won": 0, "timeout": 0, "ended": 0}
    while len(coverage) < episodes:
        actions = agent.act(game)
        counts += np.bincount(actions[playing >= 0], minlength=NUM_ACTIONS)
        _, done = game.step(actions)
        for i, region in enumerate(game.region().tolist()):
            visited[i].add(region)
        for i in np.flatnonzero(done):
            if playing[i] >= 0:
                coverage.append(len(visited[i]))
                outcomes["won" if game.won[i] else "timeout" if game.t[i] >= max_steps else "ended"] += 1
            playing[i] = queue.pop(0) if queue else -1
            game.reset([max(playing[i], 0)], [i])  # idle envs replay a level, uncounted
            agent.reset([i])
            visited[i] = {int(game.region()[i])}
    return {
        "game": game_name,
        "agent": agent.name,
        "episodes": episodes,
        "coverage_mean": float(np.mean(coverage)),
        "coverage_std": float(np.std(coverage)),
        "outcomes": outcomes,
        "action_histogram": (counts / counts.sum()).round(4).tolist(),
    }
