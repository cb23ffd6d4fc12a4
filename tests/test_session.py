import tracemalloc

import numpy as np
import pytest
import torch

from core.frames import FrameError
from core.session import SamplingConfig, WorldSession
from core.world_model import WorldModel
from tests.conftest import tiny_config
from tests.synthetic import sprite_frames


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return WorldModel(tiny_config())


def test_reset_and_step_give_uint8_frames(model):
    session = WorldSession(model)
    start = sprite_frames(1)[0]
    assert np.array_equal(session.reset(start), start)
    frame = session.step("LEFT+FIRE")
    assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8
    assert session.frame_index == 1


def test_reset_from_a_level_seed_starts_on_that_levels_first_frame(model):
    from core.games import first_frame

    session = WorldSession(model)
    assert np.array_equal(session.reset(seed=7, game="maze"), first_frame("maze", 7))


def _held_bytes(obj, seen=None) -> int:
    """Bytes of every tensor and array an object holds (through attributes, containers and state
    objects), the model's weights aside: what would grow if a session kept a history."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, (torch.nn.Module, torch.Generator, type)):
        return 0
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(_held_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)) or type(obj).__name__ == "deque":
        return sum(_held_bytes(v, seen) for v in obj)
    if hasattr(obj, "__dict__"):
        return _held_bytes(vars(obj), seen)
    return 0


def test_a_session_holds_the_same_memory_at_every_step(model):
    """A play step costs the same at frame 10 and frame 10,000: the session keeps a fixed-size recurrent
    state, never a history. Nothing it holds grows, and no Python or numpy memory piles up per step
    (tracemalloc sees numpy's buffers: one kept 256x256 frame is 192 KiB)."""
    session = WorldSession(model)
    session.reset(sprite_frames(1)[0])
    actions = np.random.default_rng(0).integers(18, size=12)
    for action in actions[:4]:  # warm up: anything built lazily on the first steps
        session.step(int(action))
    held, numel = _held_bytes(session), session.state_numel()
    assert held > 0
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for action in actions[4:]:
            session.step(int(action))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert _held_bytes(session) == held and session.state_numel() == numel and session.frame_index == 12
    assert grown < 64 * 1024, f"{grown} bytes more after 8 steps"


def test_argmax_is_deterministic_and_seeded_sampling_replays(model):
    start = sprite_frames(1)[0]
    actions = ["LEFT", "UP", "FIRE", "NOOP", "DOWNRIGHT"]

    def play(sampling):
        """The token grids a session dreams (an untrained decoder draws every grid the same)."""
        session = WorldSession(model, sampling)
        session.reset(start)
        dreamt = []
        for action in actions:
            session.step(action)
            dreamt.append(session._tokens.clone())
        return torch.stack(dreamt)

    seeded = SamplingConfig(temperature=1.0, top_k=50, seed=3)
    assert torch.equal(play(SamplingConfig()), play(SamplingConfig()))
    assert torch.equal(play(seeded), play(seeded))
    assert not torch.equal(play(seeded), play(SamplingConfig(temperature=1.0, top_k=50, seed=4)))


def test_session_steps_match_the_batched_dynamics(model):
    """The session is a thin driver: its tokens are the argmax of Dynamics.step on its state."""
    session = WorldSession(model)
    session.reset(sprite_frames(1)[0])
    tokens, state = session._tokens, model.dynamics.init_state(1)
    with torch.no_grad():
        logits, _ = model.dynamics.step(tokens, torch.tensor([3]), state)
    session.step(3)
    assert torch.equal(session._tokens, logits.argmax(-1))


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((128, 128, 3), np.uint8), r"shape \(256, 256, 3\).*got \(128, 128, 3\)"),
        (np.zeros((256, 256, 4), np.uint8), r"got \(256, 256, 4\)"),
        (np.zeros((256, 256, 3), np.float32), "uint8 frame"),
        ([[0]], "numpy array"),
    ],
)
def test_reset_rejects_wrong_frames(model, bad, message):
    with pytest.raises(FrameError, match=message):
        WorldSession(model).reset(bad)


def test_invalid_actions_and_order_are_errors(model):
    session = WorldSession(model)
    with pytest.raises(RuntimeError, match="reset"):
        session.step(0)
    session.reset(sprite_frames(1)[0])
    with pytest.raises(ValueError, match="valid actions"):
        session.step("JUMP")
    with pytest.raises(ValueError, match="invalid action 18"):
        session.step(18)
    with pytest.raises(ValueError, match="temperature"):
        SamplingConfig(temperature=-1)
