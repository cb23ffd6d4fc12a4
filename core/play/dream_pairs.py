"""A real clip and a dreamed clip of the same play, for the "Real or dream?" tab.

The real clip is one of our games played by an agent (core.agents) from a level's first frame;
the dream is the world model rolled out from that same first frame under the same actions
(core.session.WorldSession): a visual Turing test for human evaluation (as
GameNGen asked raters to tell real DOOM clips from simulated ones). Each pair is written once as
two GIFs and reused: a pair is keyed by the model (and its weights' version), the game, the
level seed and the clip settings.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.agents import make_agent
from core.atomic import staged_folder
from core.games import make_game
from core.session import WorldSession
from core.world_model import WorldModel

REAL_FILE, DREAM_FILE, META_FILE = "real.gif", "dream.gif", "clip.json"


@dataclass
class ClipConfig:
    steps: int = 60  # actions played after the start frame: 2 s at the games' 30 FPS
    agent: str = "scripted"  # who plays the real game: "scripted" moves with purpose, as a person would
    frame_ms: int = 30  # GIF frame duration; GIF counts in 10 ms steps, 30 is nearest the games' 33 ms

    def __post_init__(self):
        # browsers play delays under 20 ms slower; GIF stores only multiples of 10 ms
        if self.steps < 1 or self.frame_ms < 20 or self.frame_ms % 10:
            raise ValueError(
                f"a clip needs steps >= 1 and frame_ms a multiple of 10 from 20, got {self.steps} and {self.frame_ms}"
            )


@dataclass
class ClipPair:
    real: Path
    dream: Path
    game: str
    seed: int
    actions: list[int]  # the actions both clips were played with, one per frame after the first


def play_real(game: str, seed: int, config: ClipConfig) -> tuple[np.ndarray, np.ndarray]:
    """An agent plays level `seed` of `game`: (frames (T+1, H, W, 3) uint8, actions (T,)); shorter if the
    level ends first (the dream then gets the same shorter list)."""
    env = make_game(game, num_envs=1)
    frames = [env.reset([seed])[0]]
    agent = make_agent(config.agent, env, seed=seed)
    actions = []
    for _ in range(config.steps):
        action = agent.act(env)
        next_frames, done = env.step(action)
        frames.append(next_frames[0])
        actions.append(int(action[0]))
        if done[0]:
            break
    return np.stack(frames), np.array(actions, dtype=np.int64)


def dream(model: WorldModel, first_frame: np.ndarray, actions: np.ndarray, device: str = "cpu") -> np.ndarray:
    """The model's rollout from `first_frame` under `actions`: (T+1, H, W, 3) uint8, frame 0 the start."""
    world = WorldSession(model, device=device)
    frames = [world.reset(first_frame)]
    frames += [world.step(int(action)) for action in actions]
    return np.stack(frames)


def clip_pair(
    model: WorldModel, model_key: str, game: str, seed: int, cache_dir: str | Path, config: ClipConfig | None = None
) -> ClipPair:
    """The cached pair for (model_key, game, seed, config), made first if it is not there yet."""
    config = config or ClipConfig()
    folder = Path(cache_dir) / _safe(model_key) / game / f"seed{seed}-{config.agent}-{config.steps}x{config.frame_ms}ms"
    if not (folder / META_FILE).is_file():  # the meta file is written last, so its presence means a whole pair
        real, actions = play_real(game, seed, config)
        dreamed = dream(model, real[0], actions)
        meta = {"model": model_key, "game": game, "seed": seed, "actions": actions.tolist(), "config": asdict(config)}
        # replace=True: two visitors asking for the same new pair at once both write it; either copy is right
        with staged_folder(folder, replace=True) as stage:
            write_gif(real, stage / REAL_FILE, config.frame_ms)
            write_gif(dreamed, stage / DREAM_FILE, config.frame_ms)
            (stage / META_FILE).write_text(json.dumps(meta))
    meta = json.loads((folder / META_FILE).read_text())
    return ClipPair(folder / REAL_FILE, folder / DREAM_FILE, game, seed, meta["actions"])


def write_gif(frames: np.ndarray, path: Path, frame_ms: int) -> None:
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)  # registry names hold a '/'
