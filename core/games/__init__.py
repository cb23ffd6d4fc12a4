"""PocketWorld's games: our procedural 2D games, and gymnasium / Atari games through an adapter.

`GAMES` maps each built-in game's name to its class; `HELD_OUT` names those no shipped model trains
on (bricks: the test bed for bringing your own game, which a fine-tune learns). `make_game` also accepts
"gym:<ENV_ID>" (any gymnasium env with rgb_array rendering and a Discrete action space),
"atari:<NAME>" (through ale-py, an optional extra) and "web:<PAGE>" (an HTML5 canvas game in
headless Chromium). `first_frame(game, seed)` is what a play
session starts from.
"""

from __future__ import annotations

import numpy as np

from core.games.base import FPS, FRAME_SIZE, GameConfig, VecGame, unflatten_state
from core.games.bricks import Bricks
from core.games.maze import Maze
from core.games.platformer import Platformer
from core.games.shooter import Shooter

GAMES: dict[str, type[VecGame]] = {cls.name: cls for cls in (Platformer, Maze, Shooter, Bricks)}
HELD_OUT = ("bricks",)  # built-in games kept out of every zoo model's training data (a test checks the configs)
PREFIXES = ("gym:", "atari:", "web:")  # third-party games: gym_adapter.py and web.py


def check_game(name: str) -> str:
    """Return `name` if it names a game, else raise ValueError listing the valid ones."""
    if name in GAMES or (name.startswith(PREFIXES) and name.split(":", 1)[1]):
        return name
    raise ValueError(
        f"unknown game {name!r}; valid games: {', '.join(GAMES)}, "
        f"gym:<ENV_ID> (e.g. gym:CartPole-v1), atari:<NAME> (e.g. atari:Pong) or "
        f"web:<PAGE.html or http://localhost URL>"
    )


def make_game(name: str, num_envs: int = 1, **options) -> VecGame:
    """A game by name with `num_envs` environments; options go to its GameConfig (or the adapter)."""
    check_game(name)
    if name in GAMES:
        return GAMES[name](GameConfig(num_envs=num_envs, **options))
    if name.startswith("web:"):
        from core.games.web import WebConfig, WebGame

        if options.pop("tileset", None):
            raise ValueError(f"tilesets restyle our own games only; {name} draws its own frames")
        return WebGame(name[4:], WebConfig(num_envs=num_envs, **options))
    from core.games.gym_adapter import make_third_party

    return make_third_party(name, num_envs=num_envs, **options)


def first_frame(game: str, seed: int) -> np.ndarray:
    """The first frame (256, 256, 3) uint8 of level `seed` of `game`: where a play session starts."""
    env = make_game(game, num_envs=1)
    return env.reset([seed])[0]


__all__ = [
    "FPS",
    "FRAME_SIZE",
    "GAMES",
    "HELD_OUT",
    "GameConfig",
    "VecGame",
    "check_game",
    "first_frame",
    "make_game",
    "unflatten_state",
]
