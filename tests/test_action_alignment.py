"""A known key followed from the game to the model: recorder -> shard -> clip readers -> token
shards -> the dynamics batch -> a play session. At every stage, the action paired with frame t
must be the one that moved the player from frame t to frame t+1; an off-by-one anywhere
teaches a model that the keys do not matter. And the shuffled-action loss gap, the check that
catches a model ignoring its actions, must read zero for such a model and clearly more for one
that uses them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from core.actions import ACTION_IDS
from core.data.recorder import CollectConfig, Collector
from core.games import first_frame
from core.games.base import unflatten_state
from core.train.data import GAMEPLAY, TOKENS, ClipBatches, index_shards
from core.train.dynamics import DynamicsObjective, action_loss_gap, next_token_loss
from tests.test_dynamics import toy_dynamics
from tests.toy import sprite_clips

RIGHT, LEFT, NOOP = ACTION_IDS["RIGHT"], ACTION_IDS["LEFT"], ACTION_IDS["NOOP"]
# runs of different lengths, so that a sequence shifted by one frame disagrees with the motion
PLAN = [RIGHT] * 5 + [LEFT] * 3 + [NOOP] * 2 + [RIGHT] * 2 + [LEFT] * 6 + [NOOP] + [RIGHT] * 4 + [LEFT]


class PlannedAgent:
    """Presses PLAN over and over, whatever the game shows."""

    def __init__(self, num_envs: int):
        self.num_envs, self.t = num_envs, 0

    def reset(self, env_ids) -> None:
        pass

    def act(self, game) -> np.ndarray:
        self.t += 1
        return np.full(self.num_envs, PLAN[(self.t - 1) % len(PLAN)], np.int64)


@pytest.fixture(scope="module")
def maze_shards(tmp_path_factory):
    """Maze play under PLAN: the maze fits one screen, so RIGHT moves the player's sprite right."""
    import core.agents

    out = tmp_path_factory.mktemp("aligned") / "shards"
    original = core.agents.make_agent
    core.agents.make_agent = lambda name, game, **kwargs: PlannedAgent(game.num_envs)
    try:
        Collector(CollectConfig(game="maze", frames=96, num_envs=2, chunk=48, seed=11), out, progress=False).run()
    finally:
        core.agents.make_agent = original
    return out


def horizontal_moves(state: np.ndarray, layout: dict) -> np.ndarray:
    """state (T, D) -> the player's x move from frame t to t+1, (T-1,)."""
    x = unflatten_state(state.astype(np.float64), layout)["player_pos"][:, 0]
    return np.diff(x)


def assert_actions_explain_moves(actions: np.ndarray, moves: np.ndarray) -> None:
    """actions[t] must be the key behind moves[t]; a shift by one frame breaks this on PLAN."""
    right, left = moves > 0.5, moves < -0.5
    assert right.sum() >= 5 and left.sum() >= 5, "the player hardly moved: the test proves nothing"
    assert (actions[: len(moves)][right] == RIGHT).all()
    assert (actions[: len(moves)][left] == LEFT).all()
    assert (np.abs(moves[actions[: len(moves)] == NOOP]) < 0.5).all()


def test_the_recorded_action_at_frame_t_is_what_moved_the_player_to_t_plus_1(maze_shards):
    from core.data.shards import list_shards, read_shard

    samples = [s for shard in list_shards(maze_shards) for s in read_shard(shard)]
    assert samples
    for sample in samples:
        assert_actions_explain_moves(sample.actions, horizontal_moves(sample.state, sample.meta["state_layout"]))
        if sample.meta["start_frame"] == 0:  # frame 0 is the level's first frame, not the one after it
            assert np.array_equal(sample.frames[0], first_frame("maze", sample.meta["seed"]))


def test_the_clip_reader_keeps_actions_aligned_with_frames(maze_shards):
    """The training reader's clips are the shard's frames with the shard's actions, at every offset (the shard's
    pairing is checked against the game's moves above)."""
    import hashlib

    from core.data.shards import list_shards, read_shard

    by_frames = {
        hashlib.sha1(sample.frames[start : start + 16].tobytes()).digest(): sample.actions[start : start + 16]
        for shard in list_shards(maze_shards)
        for sample in read_shard(shard)
        for start in range(len(sample.frames) - 15)
    }
    refs = index_shards([str(maze_shards)], GAMEPLAY, split=None)
    batch = next(iter(ClipBatches(refs, clip_len=16, stride=3, window=4, batch_size=8, seed=0)))
    for frames, actions in zip(batch["frames"].numpy(), batch["actions"].numpy()):
        assert np.array_equal(by_frames[hashlib.sha1(frames.tobytes()).digest()], actions)


def test_token_shards_and_the_dynamics_batch_pair_frame_t_with_action_t(maze_shards, tmp_path):
    from core.train.config import load_run_config
    from core.train.tokens import encode_shards
    from tests.train_fixtures import save_tiny_model

    save_tiny_model(tmp_path / "model")
    config = load_run_config(
        None,
        [
            f"model.init={tmp_path / 'model'}",
            f"tokens.out={tmp_path / 'tokens'}",
            f"data.train=[{maze_shards}]",
            "log.progress=false",
        ],
        stage="tokens",
    )
    encode_shards(config)
    gameplay = {r.key: r for r in index_shards([str(maze_shards)], GAMEPLAY, split=None)}
    token_refs = index_shards([str(tmp_path / "tokens")], TOKENS, split=None)
    batch = next(iter(ClipBatches(token_refs, clip_len=12, stride=12, window=4, batch_size=3, seed=0)))

    # a spy dynamics records what the objective feeds it and answers with the true next tokens
    class Spy(nn.Module):
        def forward(self, tokens, actions):
            self.seen = tokens, actions
            target = batch["tokens"][:, 1:]
            return torch.nn.functional.one_hot(target, 512).float() * 50

    spy = Spy()
    loss, _ = DynamicsObjective(spy)(batch)
    tokens_in, actions_in = spy.seen
    # input t is (frame t, action t) and its output is scored against frame t+1
    assert torch.equal(tokens_in, batch["tokens"][:, :-1]) and torch.equal(actions_in, batch["actions"][:, :-1])
    assert loss.item() < 1e-6
    # and action t of a token clip is the recorded action t of its gameplay sample
    for ref in token_refs:
        from core.train.data import load_sample

        assert np.array_equal(load_sample(ref)["actions"], load_sample(gameplay[ref.key])["actions"])


def test_a_play_session_conditions_the_next_frame_on_the_key_just_pressed():
    """WorldSession.step(a) from frame t must compute what the clip forward computes for (frame t, action t)."""
    from core.session import WorldSession
    from core.world_model import WorldModel
    from tests.conftest import tiny_config

    torch.manual_seed(0)
    model = WorldModel(tiny_config()).eval()
    start = first_frame("maze", 3)
    session = WorldSession(model)
    session.reset(start)
    tokens0 = session._tokens.clone()  # (1, S)
    recorded = {}
    original = model.dynamics.step

    def spy(tokens, actions, state, inplace=False):
        recorded["tokens"], recorded["actions"] = tokens.clone(), actions.clone()
        logits, state = original(tokens, actions, state, inplace=inplace)
        recorded["logits"] = logits
        return logits, state

    model.dynamics.step = spy
    session.step("RIGHT")
    assert torch.equal(recorded["tokens"], tokens0) and recorded["actions"].tolist() == [RIGHT]
    with torch.no_grad():
        clip = model.dynamics(tokens0[:, None], torch.tensor([[RIGHT]]))[:, 0]  # (1, S, V)
    assert torch.allclose(clip, recorded["logits"], atol=1e-5)


def test_the_shuffled_action_gap_is_zero_for_a_model_that_ignores_its_actions():
    torch.manual_seed(0)
    model = toy_dynamics().eval()
    nn.init.zeros_(model.action_embedding.weight)
    tokens, actions = sprite_clips(8, 6, generator=torch.Generator().manual_seed(0))
    true, shuffled = action_loss_gap(model, tokens, actions)
    assert abs(shuffled - true) < 1e-6


def test_the_shuffled_action_gap_is_large_for_a_model_that_follows_its_actions():
    """A model that knows the toy's rule loses much more with another clip's actions."""
    tokens, actions = sprite_clips(8, 6, generator=torch.Generator().manual_seed(0))

    class Oracle(nn.Module):
        """Predicts the sprite cell from the current frame and the action, exactly as the toy moves it."""

        def forward(self, frames, keys):
            from tests.toy import _DELTAS

            b, t, s = frames.shape
            grid = int(s**0.5)
            cell = frames.argmax(-1)  # (B, T)
            row, col = cell // grid, cell % grid
            moved = (row + _DELTAS[keys][..., 0]) % grid * grid + (col + _DELTAS[keys][..., 1]) % grid
            logits = torch.zeros(b, t, s, 2)
            logits[..., 0] = 5.0
            logits.scatter_(2, moved[..., None, None].expand(b, t, 1, 2), torch.tensor([0.0, 5.0]).expand(b, t, 1, 2))
            return logits

    true, shuffled = action_loss_gap(Oracle(), tokens, actions)
    assert true < 0.01 and shuffled - true > 0.05
    assert next_token_loss(Oracle()(tokens[:, :-1], actions[:, :-1]), tokens).item() == pytest.approx(true)
