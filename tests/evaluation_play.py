"""Recorded platformer play for the evaluation tests, with optional broken physics."""

import numpy as np

from core.agents import make_agent
from core.games import make_game


def play_platformer(seed: int, frames: int, corrupt: str | None = None):
    """(frames uint8 (T, 256, 256, 3), actions (T,), state (T, D), layout) of one scripted episode.

    corrupt: None (the real game), "no_gravity" (gravity 0 after the start) or "no_solids"
    (tiles drawn but not solid). Stops early if the episode ends."""
    game = make_game("platformer", num_envs=1)
    agent = make_agent("scripted", game, seed=seed)
    out, actions, states = [game.reset([seed])[0]], [], [game.state_vector()[0]]
    if corrupt == "no_gravity":
        game.gravity[:] = 0.0
    elif corrupt == "no_solids":
        game.tilemap[:] = 0
    for _ in range(frames - 1):
        action = agent.act(game)
        frame, done = game.step(action)
        actions.append(int(action[0]))
        out.append(frame[0])
        states.append(game.state_vector()[0])
        if done[0]:
            break
    actions.append(0)
    return np.stack(out), np.array(actions), np.stack(states), game.state_layout()
