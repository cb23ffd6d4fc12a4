"""Third-party games: any gymnasium env with rgb_array rendering and a Discrete action space.

"gym:<ENV_ID>" makes any registered env; "atari:<NAME>" makes ALE/<NAME>-v5 through ale-py
(an optional extra whose ROMs ship inside the package) at frameskip 2, i.e. 30 FPS like our
games. Each of our 18 actions is mapped onto the env's actions by their buttons (an Atari
"UPFIRE" is our UPFIRE; with no exact match the largest subset of the pressed buttons wins,
e.g. UPLEFT -> LEFT in CartPole), and frames are letterboxed to 256x256. Only ATARI_TRAIN may
go into training data: other Atari games are recorded with split "unseen", which training
readers never take, so generalisation to them can be measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core import actions as vocab
from core.games.base import FRAME_SIZE

ATARI_TRAIN = ("Pong", "Breakout", "SpaceInvaders", "MsPacman", "Seaquest", "Asterix", "Qbert", "Enduro")
# Action names, in our vocabulary, of built-in envs whose actions carry no names.
KNOWN_MEANINGS = {
    "CartPole": ("LEFT", "RIGHT"),
    "MountainCar": ("LEFT", "NOOP", "RIGHT"),
    "Acrobot": ("LEFT", "NOOP", "RIGHT"),
}
MAX_STATE = 1024  # observations up to this many numbers are recorded as the ground-truth state


def map_actions(meanings: tuple[str, ...]) -> np.ndarray:
    """(18,) env action index for each of our actions, given the env's action names in our vocabulary."""
    env_buttons = [vocab.to_buttons(vocab.ACTION_IDS[name]) for name in meanings]
    table = np.zeros(vocab.NUM_ACTIONS, dtype=np.int64)
    for action in range(vocab.NUM_ACTIONS):
        pressed = vocab.to_buttons(action)
        # prefer buttons that are all pressed (most of them), then the fewest extra buttons
        scores = [(len(b & pressed) - 10 * len(b - pressed), -len(b - pressed)) for b in env_buttons]
        table[action] = max(range(len(meanings)), key=lambda k: scores[k])
    return table


def letterbox(frame: np.ndarray, size: int = FRAME_SIZE) -> np.ndarray:
    """Scale (H, W, 3) to fit size x size keeping its aspect ratio, centred on black."""
    from PIL import Image

    height, width = frame.shape[:2]
    scale = min(size / height, size / width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    # nearest when enlarging keeps pixel art crisp; bilinear when shrinking avoids aliasing
    resample = Image.NEAREST if scale >= 1 else Image.BILINEAR
    image = np.asarray(Image.fromarray(np.ascontiguousarray(frame[..., :3])).resize((new_w, new_h), resample))
    out = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    out[top : top + new_h, left : left + new_w] = image
    return out


@dataclass
class GymConfig:
    num_envs: int = 1  # gymnasium envs stepped one after another
    max_steps: int = 1800  # our own episode time limit, on top of the env's


class GymGame:
    """The VecGame interface (reset/step/state_vector/region) over N gymnasium envs."""

    def __init__(self, name: str, make_env, meanings: tuple[str, ...], config: GymConfig, unseen: bool = False):
        if config.num_envs <= 0:
            raise ValueError(f"num_envs must be positive, got {config.num_envs}")
        self.name, self.config, self.num_envs, self.unseen = name, config, config.num_envs, unseen
        self.envs = [make_env() for _ in range(config.num_envs)]
        self.table = map_actions(meanings)
        self.t = np.zeros(self.num_envs, dtype=np.int64)
        self.done = np.ones(self.num_envs, dtype=bool)
        self.won = np.zeros(self.num_envs, dtype=bool)  # gym envs do not say; episodes just end
        self.score = np.zeros(self.num_envs)
        self.observations = [None] * self.num_envs

    def reset(self, seeds, env_ids=None) -> np.ndarray:
        env_ids = list(range(self.num_envs)) if env_ids is None else [int(i) for i in env_ids]
        for i, seed in zip(env_ids, np.asarray(seeds).reshape(-1).tolist()):
            self.observations[i], _ = self.envs[i].reset(seed=int(seed))
            self.t[i], self.done[i], self.score[i] = 0, False, 0.0
        return np.stack([letterbox(self.envs[i].render()) for i in env_ids])

    def step(self, actions) -> tuple[np.ndarray, np.ndarray]:
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or actions.min() < 0 or actions.max() >= vocab.NUM_ACTIONS:
            raise ValueError(f"expected {self.num_envs} action ids in 0..{vocab.NUM_ACTIONS - 1}, got {actions!r}")
        frames = []
        for i, env in enumerate(self.envs):
            self.observations[i], reward, terminated, truncated, _ = env.step(int(self.table[actions[i]]))
            self.score[i] += reward
            self.t[i] += 1
            self.done[i] = terminated or truncated or self.t[i] >= self.config.max_steps
            frames.append(letterbox(env.render()))
        return np.stack(frames), self.done.copy()

    def render(self) -> np.ndarray:
        return np.stack([letterbox(env.render()) for env in self.envs])

    def _state_source(self):
        ale = getattr(self.envs[0].unwrapped, "ale", None)
        if ale is not None:
            return "ram", lambda i: self.envs[i].unwrapped.ale.getRAM()
        size = np.size(self.observations[0])
        if size <= MAX_STATE and np.issubdtype(np.asarray(self.observations[0]).dtype, np.number):
            return "observation", lambda i: np.asarray(self.observations[i])
        return None, None

    def state_layout(self) -> dict[str, list[int]]:
        name, source = self._state_source()
        if name is None:
            return {}
        size = int(np.size(source(0)))
        return {name: [0, size, size]}

    def state_vector(self) -> np.ndarray:
        _, source = self._state_source()
        if source is None:
            return np.zeros((self.num_envs, 0), dtype=np.float32)
        return np.stack([np.asarray(source(i), dtype=np.float32).reshape(-1) for i in range(self.num_envs)])

    def region(self) -> np.ndarray:
        """No level geometry is known for third-party games: one region."""
        return np.zeros(self.num_envs, dtype=np.int64)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def make_third_party(name: str, num_envs: int = 1, max_steps: int = 1800, tileset: str | None = None) -> GymGame:
    """A GymGame for "gym:<ENV_ID>" or "atari:<NAME>"."""
    import gymnasium

    if tileset:
        raise ValueError(f"tilesets restyle our own games only; {name} draws its own frames")
    kind, env_id = name.split(":", 1)
    config = GymConfig(num_envs=num_envs, max_steps=max_steps)
    if kind == "atari":
        try:
            import ale_py
        except ImportError:
            raise ValueError(f"{name} needs ale-py: pip install 'pocketworld[atari]'") from None
        gymnasium.register_envs(ale_py)
        full_id = env_id if env_id.startswith("ALE/") else f"ALE/{env_id}-v5"
        make_env = lambda: gymnasium.make(full_id, render_mode="rgb_array", frameskip=2)  # noqa: E731
        probe = _checked(name, make_env)
        meanings = tuple(probe.unwrapped.get_action_meanings())
        return GymGame(
            name, make_env, meanings, config, unseen=env_id.removeprefix("ALE/").split("-")[0] not in ATARI_TRAIN
        )
    make_env = lambda: gymnasium.make(env_id, render_mode="rgb_array")  # noqa: E731
    probe = _checked(name, make_env)
    family = env_id.split("-")[0]
    meanings = KNOWN_MEANINGS.get(family) or getattr(probe.unwrapped, "get_action_meanings", lambda: None)()
    if not meanings or len(meanings) != probe.action_space.n:
        raise ValueError(
            f"{name}: its {probe.action_space.n} actions have no names to map onto ours; "
            f"add them to KNOWN_MEANINGS in core/games/gym_adapter.py "
            f"(known: {', '.join(KNOWN_MEANINGS)})"
        )
    return GymGame(name, make_env, tuple(meanings), config)


def _checked(name: str, make_env):
    """Make one env to check it (unknown id, action space, rendering) with a clear error."""
    import gymnasium

    try:
        env = make_env()
    except gymnasium.error.Error as err:
        raise ValueError(f"cannot make {name}: {err}") from None
    if not isinstance(env.action_space, gymnasium.spaces.Discrete):
        raise ValueError(
            f"{name} has a {type(env.action_space).__name__} action space; only Discrete ones map onto our 18 actions"
        )
    env.close()
    return env
