"""Agents that play the games to make training data: random, scripted and RL.

An agent has `act(game) -> (N,) action ids` (reading whatever of the game it needs) and
`reset(env_ids)` for envs that start a new level. `make_agent` builds one by name.
"""

from __future__ import annotations

from core.agents.random_play import HeldRandomAgent, RandomAgent
from core.agents.scripted import SCRIPTED

AGENTS = {
    "random": "sticky random actions (every action well represented); works with every game",
    "held": "random actions held for 1-8 frames, blind to the game (data to learn control from); every game",
    "scripted": "a competent scripted player per built-in game (platformer, maze, shooter, bricks)",
    "rl": "PPO on the ground-truth state vector, rewarded for new regions and score (built-in games)",
}


def agents_for(game: str) -> list[str]:
    """The agents that can play `game`."""
    from core.games import GAMES

    return list(AGENTS) if game in GAMES else ["random", "held"]


def make_agent(name: str, game, seed: int = 0, policy: str | None = None, rl_steps: int = 200_000):
    """An agent `name` for the (already made) `game`; `policy` / `rl_steps` are for the RL agent."""
    valid = agents_for(game.name)
    if name not in valid:
        known = f"unknown agent {name!r}" if name not in AGENTS else f"agent {name!r} cannot play {game.name!r}"
        raise ValueError(f"{known}; valid agents for {game.name}: {', '.join(valid)}")
    if name == "random":
        return RandomAgent(game.num_envs, seed=seed)
    if name == "held":
        return HeldRandomAgent(game.num_envs, seed=seed)
    if name == "scripted":
        return SCRIPTED[game.name](game.num_envs, seed=seed)
    from core.agents.rl import PPOAgent

    if policy:
        return PPOAgent.load(policy, game.num_envs, seed=seed)
    return PPOAgent.train(game.name, steps=rl_steps, seed=seed)[0].with_envs(game.num_envs)
