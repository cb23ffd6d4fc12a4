"""The vectorised game base: N environments, each playing its own seeded level, stepped at once.

A game subclass generates a level from a seed (`_generate`), advances every environment one
frame from the pressed buttons (`_advance`), reports its ground-truth state (`state`) and draws
its sprites (`_draw`). The base owns what they share: per-level art, the level image and
camera, episode clocks, action decoding and the flat state vector that RL agents and the
shards use. Same seed + same actions = same frames, in any batch slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core import actions as vocab
from core.games import render
from core.games.art import TILE, Art, Tileset, procedural_art

FRAME_SIZE = 256  # frames are FRAME_SIZE x FRAME_SIZE RGB
FPS = 30  # logical frames per second: one step is 1/30 s of game time

# (18, 5) bool: which of UP, DOWN, LEFT, RIGHT, FIRE each action id presses.
BUTTONS = np.array(
    [[b in vocab.to_buttons(a) for b in ("UP", "DOWN", "LEFT", "RIGHT", "FIRE")] for a in range(vocab.NUM_ACTIONS)]
)


@dataclass
class GameConfig:
    num_envs: int = 16  # environments stepped together
    max_steps: int = 1800  # episode time limit in frames (60 s at 30 FPS)
    tileset: str | None = None  # tileset JSON path; None = a procedural palette per level
    render: bool = True  # False skips drawing (e.g. an RL agent learning from state)

    def __post_init__(self):
        if self.num_envs <= 0:
            raise ValueError(f"num_envs must be positive, got {self.num_envs}")
        if self.max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {self.max_steps}")


@dataclass
class Buttons:
    """Decoded actions, each (N,): dx, dy in {-1, 0, 1} (screen axes) and fire."""

    dx: np.ndarray
    dy: np.ndarray
    fire: np.ndarray


class VecGame:
    """Base class: see the module docstring. Subclasses set the class attributes below."""

    name: str = ""
    description: str = ""
    tiles: tuple[str, ...] = ()  # tile names, index = tile id in the tile map
    sprites: tuple[str, ...] = ()  # sprite names, index = sprite id
    map_shape: tuple[int, int] = (16, 16)  # level size in tiles (rows, cols)

    def __init__(self, config: GameConfig | None = None):
        self.config = config or GameConfig()
        n, (rows, cols) = self.config.num_envs, self.map_shape
        self.num_envs = n
        self.tileset = Tileset(self.config.tileset) if self.config.tileset else None
        if self.tileset:  # fail at construction, not at the first reset, if names are missing
            self.tileset.art(self.tiles, self.sprites, self.name)
        self.seeds = np.zeros(n, dtype=np.int64)
        self.t = np.zeros(n, dtype=np.int64)  # frames since the level started
        self.done = np.ones(n, dtype=bool)  # True until reset
        self.won = np.zeros(n, dtype=bool)  # the level was completed (not died / timed out)
        self.score = np.zeros(n, dtype=np.int64)
        self.tilemap = np.zeros((n, rows, cols), dtype=np.uint8)
        self.level = np.zeros((n, rows * TILE, cols * TILE, 3), dtype=np.uint8)
        self.tile_rgb = np.zeros((n, len(self.tiles), TILE, TILE, 3), dtype=np.uint8)
        self.sprite_rgb = np.zeros((n, len(self.sprites), TILE, TILE, 3), dtype=np.uint8)
        self.sprite_mask = np.zeros((n, len(self.sprites), TILE, TILE), dtype=bool)
        self.camera = np.zeros((n, 2), dtype=np.int64)  # top-left (x, y) of the view in level pixels
        self._allocate(n)

    # --- the subclass interface -------------------------------------------------------------
    def _allocate(self, n: int) -> None:
        """Create the per-env state arrays."""
        raise NotImplementedError

    def _generate(self, i: int, rng: np.random.Generator) -> None:
        """Build env i's level (tilemap[i], entities, physics constants) from its seed's rng."""
        raise NotImplementedError

    def _advance(self, buttons: Buttons) -> None:
        """Advance every env one frame; set self.done / self.won / self.score and the camera."""
        raise NotImplementedError

    def _draw(self, frames: np.ndarray) -> None:
        """Draw sprites and overlays onto frames (N, 256, 256, 3) cropped from the level."""
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """Ground-truth state: name -> (N, ...) array, in a fixed order and shape per game."""
        raise NotImplementedError

    def region(self) -> np.ndarray:
        """(N,) int id of the part of the level each player is in, for coverage."""
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------------
    def reset(self, seeds, env_ids=None) -> np.ndarray:
        """Start level `seeds[k]` in env `env_ids[k]` (all envs when None); return their first frames."""
        env_ids = np.arange(self.num_envs) if env_ids is None else np.asarray(env_ids, dtype=np.int64)
        seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
        if len(seeds) != len(env_ids):
            raise ValueError(f"reset got {len(seeds)} seeds for {len(env_ids)} environments")
        if (seeds < 0).any():
            raise ValueError(f"level seeds must be non-negative, got {seeds.min()}")
        for i, seed in zip(env_ids.tolist(), seeds.tolist()):
            rng = np.random.default_rng(seed)
            art: Art = (
                self.tileset.art(self.tiles, self.sprites, self.name)
                if self.tileset
                else procedural_art(rng, self.tiles, self.sprites)
            )
            self.tile_rgb[i], self.sprite_rgb[i], self.sprite_mask[i] = art.tiles, art.sprites, art.sprite_mask
            self.seeds[i], self.t[i], self.done[i], self.won[i], self.score[i] = seed, 0, False, False, 0
            self._generate(i, rng)
            self.level[i] = render.paint_level(self.tile_rgb[i], self.tilemap[i])
        self._follow_camera()
        return self.render()[env_ids] if self.config.render else None

    def step(self, actions) -> tuple[np.ndarray | None, np.ndarray]:
        """Apply one action id per env; return (frames (N, 256, 256, 3) uint8 or None, done (N,) bool).

        Envs that finish keep their final frame; reset them (with new seeds) before the next step.
        """
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(
                f"expected {self.num_envs} integer action ids, got an array of shape "
                f"{actions.shape} and dtype {actions.dtype}"
            )
        if actions.min() < 0 or actions.max() >= vocab.NUM_ACTIONS:
            raise ValueError(f"action ids must be in 0..{vocab.NUM_ACTIONS - 1}, got {actions.min()}..{actions.max()}")
        if self.done.any():
            raise RuntimeError(f"envs {np.flatnonzero(self.done).tolist()} are done; reset them before stepping")
        pressed = BUTTONS[actions]
        self._advance(
            Buttons(
                dx=pressed[:, 3].astype(np.int64) - pressed[:, 2],
                dy=pressed[:, 1].astype(np.int64) - pressed[:, 0],
                fire=pressed[:, 4],
            )
        )
        self.t += 1
        self.done |= self.t >= self.config.max_steps
        self._follow_camera()
        return (self.render() if self.config.render else None), self.done.copy()

    def render(self) -> np.ndarray:
        """Current frames (N, 256, 256, 3) uint8."""
        frames = render.crop(self.level, self.camera, FRAME_SIZE)
        self._draw(frames)
        return frames

    def _follow_camera(self) -> None:
        """Point the camera (level pixels) at the player; games with a fixed view keep (0, 0)."""

    def repaint(self, i: int, row: int, col: int, tile_id: int) -> None:
        """Change one tile of env i's level (map and image)."""
        self.tilemap[i, row, col] = tile_id
        render.paint_tile(self.level[i], self.tile_rgb[i], row, col, tile_id)

    def sprite_draws(self, frames, env, sprite, x, y) -> None:
        """Blit sprites given in level pixels (converted to screen pixels through the camera)."""
        env = np.asarray(env, dtype=np.int64)
        xs = np.floor(x).astype(np.int64) - self.camera[env, 0]
        ys = np.floor(y).astype(np.int64) - self.camera[env, 1]
        render.blit(frames, self.sprite_rgb, self.sprite_mask, env, np.asarray(sprite, dtype=np.int64), xs, ys)

    def state_layout(self) -> dict[str, list[int]]:
        """Name -> [start, stop, *shape] of each state field in the flat state vector."""
        layout, start = {}, 0
        for name, value in self.state().items():
            shape = list(value.shape[1:])
            size = int(np.prod(shape, dtype=np.int64))
            layout[name] = [start, start + size, *shape]
            start += size
        return layout

    def state_vector(self) -> np.ndarray:
        """The ground-truth state flattened to (N, D) float32, in state_layout() order."""
        return np.concatenate([v.reshape(self.num_envs, -1).astype(np.float32) for v in self.state().values()], axis=1)


def unflatten_state(vector: np.ndarray, layout: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """(..., D) state vectors + a layout from state_layout() -> name -> (..., *shape) arrays."""
    lead = vector.shape[:-1]
    return {name: vector[..., start:stop].reshape(*lead, *shape) for name, (start, stop, *shape) in layout.items()}
