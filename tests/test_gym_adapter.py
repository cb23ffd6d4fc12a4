"""The gymnasium adapter on a built-in env (CartPole), and Atari through ale-py where installed."""

import numpy as np
import pytest

from core.actions import ACTION_IDS
from core.data.recorder import CollectConfig, Collector
from core.data.shards import list_shards, read_shard
from core.games import make_game
from core.games.gym_adapter import letterbox, map_actions


def test_actions_map_by_buttons():
    table = map_actions(("LEFT", "RIGHT"))
    assert table[ACTION_IDS["LEFT"]] == 0 and table[ACTION_IDS["UPRIGHTFIRE"]] == 1
    atari = map_actions(("NOOP", "FIRE", "UP", "DOWN"))
    assert atari[ACTION_IDS["UPFIRE"]] in (1, 2) and atari[ACTION_IDS["LEFT"]] == 0 and atari[ACTION_IDS["DOWN"]] == 3


def test_letterbox_keeps_aspect_on_black():
    frame = np.full((400, 600, 3), 200, dtype=np.uint8)
    boxed = letterbox(frame)
    assert boxed.shape == (256, 256, 3)
    assert (boxed[:40] == 0).all() and (boxed[128] == 200).all()  # bars above, picture across


def test_cartpole_through_the_adapter(tmp_path):
    game = make_game("gym:CartPole-v1", num_envs=2)
    first = game.reset([3, 3])
    assert first.shape == (2, 256, 256, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first[0], first[1])
    for _ in range(8):
        frames, done = game.step(np.array([ACTION_IDS["LEFT"], ACTION_IDS["RIGHT"]]))
    state = game.state_vector()
    assert state.shape == (2, 4) and state[0, 1] < 0 < state[1, 1]  # cart velocity follows the push
    assert (frames[0] != frames[1]).any() and not done.any()

    summary = Collector(
        CollectConfig(game="gym:CartPole-v1", agent="random", frames=64, num_envs=2, chunk=32),
        tmp_path / "cartpole",
        progress=False,
    ).run()
    sample = next(read_shard(list_shards(tmp_path / "cartpole")[0]))
    assert summary["frames_written"] >= 64 and sample.meta["state_layout"] == {"observation": [0, 4, 4]}


def test_unknown_or_unmappable_envs_are_explained():
    with pytest.raises(ValueError, match="cannot make gym:NoSuchEnv-v0"):
        make_game("gym:NoSuchEnv-v0")
    with pytest.raises(ValueError, match="Discrete"):
        make_game("gym:Pendulum-v1")


def test_atari_through_ale_py():
    pytest.importorskip("ale_py")
    pong = make_game("atari:Pong")
    frames = pong.reset([0])
    assert frames.shape == (1, 256, 256, 3) and pong.state_vector().shape == (1, 128) and not pong.unseen
    assert make_game("atari:Alien").unseen  # not on the training list: recorded as split "unseen"
