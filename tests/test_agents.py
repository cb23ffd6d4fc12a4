"""Agents: random play covers every action; scripted and RL players reach more of a level than random."""

import numpy as np
import pytest
import torch

from core.agents import make_agent
from core.agents.evaluate import evaluate
from core.agents.random_play import RandomAgent
from core.agents.rl import PPOAgent, PPOConfig
from core.agents.scripted import SCRIPTED
from core.games import make_game


def test_random_agent_varies_and_covers_every_action():
    agent = RandomAgent(64, seed=0)
    actions = np.stack([agent.act(None) for _ in range(500)])  # (T, N)
    share = np.bincount(actions.ravel(), minlength=18) / actions.size
    assert share.min() > 0.8 / 18 and share.max() < 1.2 / 18
    mean_run = actions.size / (np.count_nonzero(np.diff(actions, axis=0)) + actions.shape[1])
    assert 2 < mean_run < 6  # sticky, but changing several times a second


@pytest.mark.parametrize("game", list(SCRIPTED))
def test_scripted_player_covers_more_than_random(game):
    random = evaluate(game, RandomAgent(8, seed=0), episodes=8, max_steps=600)
    scripted = evaluate(game, SCRIPTED[game](8, seed=0), episodes=8, max_steps=600)
    assert scripted["coverage_mean"] > random["coverage_mean"] * 1.3, (scripted, random)
    assert min(scripted["action_histogram"]) > 0  # exploration keeps every action in the data


@pytest.mark.slow
def test_rl_agent_learns_to_cover_more_than_random(tmp_path):
    torch.set_num_threads(1)
    agent, history = PPOAgent.train("platformer", steps=60_000, seed=0, config=PPOConfig(max_steps=600), progress=False)
    random = evaluate("platformer", RandomAgent(8, seed=0), episodes=8, max_steps=600)
    trained = evaluate("platformer", agent.with_envs(8), episodes=8, max_steps=600)
    assert trained["coverage_mean"] > random["coverage_mean"] * 1.3, (trained, random, history[-1])
    agent.save(tmp_path / "policy.pt")
    game = make_game("platformer", num_envs=2)
    game.reset([0, 1])
    loaded = make_agent("rl", game, policy=str(tmp_path / "policy.pt"))
    assert loaded.act(game).shape == (2,)


def test_unknown_or_unfit_agents_are_explained():
    game = make_game("maze", num_envs=1)
    with pytest.raises(ValueError, match="valid agents for maze: random, held, scripted, rl"):
        make_agent("genius", game)
