"""Scripted competent players, one per built-in game, reading the ground-truth state and level.

They play well enough to reach the parts of a level random play never sees (the platformer
player runs, jumps gaps, walls and enemies; the dungeon player walks shortest paths to gems,
the key, the doors and the exit; the pilot lines up under aliens, fires and dodges shots; the
bricks player launches towards the bricks and meets the ball where it will come down).
A share of sticky random actions keeps every action in the data.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from core.actions import from_buttons
from core.agents.random_play import RandomAgent
from core.games import bricks, maze, platformer, shooter
from core.games.art import TILE
from core.games.base import FRAME_SIZE
from core.games.physics import RIGHT


def _action(dx: np.ndarray, dy: np.ndarray, fire: np.ndarray) -> np.ndarray:
    """Vectorised from_buttons: dx, dy in {-1, 0, 1} (screen axes) and fire (N,) -> action ids."""
    table = np.zeros((3, 3, 2), dtype=np.int64)
    for x in (-1, 0, 1):
        for y in (-1, 0, 1):
            for f in (0, 1):
                buttons = (
                    {-1: ["LEFT"], 0: [], 1: ["RIGHT"]}[x]
                    + {-1: ["UP"], 0: [], 1: ["DOWN"]}[y]
                    + (["FIRE"] if f else [])
                )
                table[x + 1, y + 1, f] = from_buttons(buttons)
    return table[np.asarray(dx) + 1, np.asarray(dy) + 1, np.asarray(fire, dtype=np.int64)]


class ScriptedAgent:
    """Base: a game-specific `plan(game)` mixed with sticky random actions `explore` of the time."""

    name = "scripted"

    def __init__(self, num_envs: int, seed: int = 0, explore: float = 0.1):
        self.random = RandomAgent(num_envs, seed=seed)
        self.rng = np.random.default_rng(seed + 1)
        self.explore = explore
        self.exploring = np.zeros(num_envs, dtype=np.int64)  # frames of random play left

    def reset(self, env_ids) -> None:
        self.random.reset(env_ids)
        self.exploring[env_ids] = 0

    def act(self, game) -> np.ndarray:
        start = (self.exploring == 0) & (self.rng.random(len(self.exploring)) < self.explore / 8)
        self.exploring = np.where(start, 8, np.maximum(self.exploring - 1, 0))  # bursts of ~8 frames
        random_actions = self.random.act(game)
        return np.where(self.exploring > 0, random_actions, self.plan(game))

    def plan(self, game) -> np.ndarray:
        raise NotImplementedError


class PlatformerPlayer(ScriptedAgent):
    """Run right; jump at gaps, walls and enemies ahead; sprint now and then."""

    def __init__(self, num_envs: int, seed: int = 0, explore: float = 0.1):
        super().__init__(num_envs, seed, explore)
        self.waited = np.zeros(num_envs, dtype=np.int64)  # frames spent waiting for an enemy to turn

    def reset(self, env_ids) -> None:
        super().reset(env_ids)
        self.waited[env_ids] = 0

    def plan(self, game: platformer.Platformer) -> np.ndarray:
        n = np.arange(game.num_envs)
        solid = (game.tilemap == platformer.GROUND) | (game.tilemap == platformer.BRICK)
        x, y = np.floor(game.pos[:, 0]).astype(np.int64), np.floor(game.pos[:, 1]).astype(np.int64)
        front = x + platformer.PLAYER_W  # first pixel column past the body
        feet_row = np.clip((y + platformer.PLAYER_H) // TILE, 0, platformer.ROWS - 1)
        below = np.arange(platformer.ROWS)[None, :] >= feet_row[:, None]
        # a pit starts within the next frame's run: jump at the last moment, sprinting, for the longest reach
        edge = np.clip((front + 2 * game.run_speed.astype(np.int64) + 2) // TILE, 0, platformer.COLS - 1)
        gap = ~(solid[n, :, edge] & below).any(1)
        ahead = np.clip((front + 8) // TILE, 0, platformer.COLS - 1)
        mid_row = np.clip((y + platformer.PLAYER_H // 2) // TILE, 0, platformer.ROWS - 1)
        wall = solid[n, mid_row, ahead] | game.contacts[:, RIGHT]
        dx = game.enemy_pos[..., 0] - x[:, None]
        enemy = (
            game.enemy_alive
            & (dx > 8)
            & (dx < 30 + 8 * game.run_speed[:, None])
            & (np.abs(game.enemy_pos[..., 1] - y[:, None]) < 24)
        ).any(1)
        jump = game.on_ground & (gap | wall | enemy)
        # in the air, stop over ground on the way down rather than overshoot a short ledge into the next pit
        body = np.clip(np.stack([x, x + platformer.PLAYER_W - 1]) // TILE, 0, platformer.COLS - 1)  # (2, N)
        landing = (solid[n, :, body[0]] & below).any(1) | (solid[n, :, body[1]] & below).any(1)
        brake = ~game.on_ground & (game.vel[:, 1] > 0) & landing
        # an enemy patrolling the higher ground ahead: wait on the ground (a while at most) for it to turn
        above = (
            game.enemy_alive
            & (dx > 0)
            & (dx < 72)
            & (game.enemy_pos[..., 1] + platformer.ENEMY_H <= y[:, None] + platformer.PLAYER_H - 8)
        ).any(1)
        self.waited = np.where(above & game.on_ground, self.waited + 1, 0)
        hold = above & game.on_ground & (self.waited < 90)
        jump &= ~hold
        brake |= hold
        sprint = gap | ~game.on_ground | ((game.t // 45) % 3 == 0)
        return _action(np.where(brake, 0, 1), np.where(jump, -1, 0), sprint)


class MazePlayer(ScriptedAgent):
    """Walk shortest paths: gems and the key first, then through the doors to the exit; swing at enemies."""

    def __init__(self, num_envs: int, seed: int = 0, explore: float = 0.1):
        super().__init__(num_envs, seed, explore)
        self.fields = [None] * num_envs  # per env: (cache key, distance field (R, C))

    def reset(self, env_ids) -> None:
        super().reset(env_ids)
        for i in env_ids:
            self.fields[i] = None

    def _distances(self, game: maze.Maze, i: int) -> np.ndarray:
        """Breadth-first distance (tiles) from the current targets, cached until the targets change."""
        tiles = game.tilemap[i]
        wanted = [maze.GEM] + ([maze.EXIT] if game.has_key[i] else [maze.KEY])
        targets = np.isin(tiles, wanted)
        if not targets.any():
            targets = tiles == maze.EXIT
        key = (int(targets.sum()), bool(game.has_key[i]))
        if self.fields[i] is not None and self.fields[i][0] == key:
            return self.fields[i][1]
        passable = (tiles != maze.WALL) & ((tiles != maze.DOOR) | game.has_key[i])
        dist = np.full(tiles.shape, 10**6)
        queue = deque(zip(*np.nonzero(targets)))
        for cell in queue:
            dist[cell] = 0
        while queue:
            r, c = queue.popleft()
            for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if passable[nr, nc] and dist[nr, nc] > dist[r, c] + 1:
                    dist[nr, nc] = dist[r, c] + 1
                    queue.append((nr, nc))
        self.fields[i] = (key, dist)
        return dist

    def plan(self, game: maze.Maze) -> np.ndarray:
        dx, dy = np.zeros(game.num_envs, np.int64), np.zeros(game.num_envs, np.int64)
        centre = game.pos + maze.BOX / 2
        for i in range(game.num_envs):
            dist = self._distances(game, i)
            r, c = (centre[i, 1] // TILE).astype(int), (centre[i, 0] // TILE).astype(int)
            options = [(dist[r + dr, c + dc], dr, dc) for dr, dc in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))]
            _, dr, dc = min(options)
            goal = np.array([(c + dc + 0.5) * TILE, (r + dr + 0.5) * TILE])
            delta = goal - centre[i]
            dx[i], dy[i] = np.where(np.abs(delta) > 1.0, np.sign(delta), 0).astype(np.int64)
        near = game.enemy_alive & (np.abs(game.enemy_pos - game.pos[:, None, :]).max(-1) < 28)
        return _action(dx, dy, near.any(1))


class ShooterPilot(ScriptedAgent):
    """Line up under the nearest living alien and fire; sidestep shots coming down."""

    def plan(self, game: shooter.Shooter) -> np.ndarray:
        ax, _ = game._alien_xy()
        centre = game.pos[:, 0] + shooter.SHIP_BOX / 2
        gap = np.where(game.alien_alive, ax + shooter.ALIEN_BOX / 2 - centre[:, None], np.inf)
        nearest = np.take_along_axis(gap, np.abs(gap).argmin(1)[:, None], 1)[:, 0]
        dx = np.where(np.isfinite(nearest) & (np.abs(nearest) > 3), np.sign(np.nan_to_num(nearest)), 0)
        shots = game.enemy_bullets
        incoming = (
            game.enemy_bullet_alive
            & (shots[..., 1] > game.pos[:, 1:] - 60)
            & (shots[..., 1] < game.pos[:, 1:] + 8)
            & (np.abs(shots[..., 0] + 2 - centre[:, None]) < 14)
        )
        dodge = incoming.any(1)
        threat_x = np.where(incoming, shots[..., 0], 0).sum(1) / np.maximum(incoming.sum(1), 1)
        away = np.where(threat_x > centre, -1, 1)
        dx = np.where(dodge, away, dx).astype(np.int64)
        dy = np.where(game.pos[:, 1] < FRAME_SIZE - 40, 1, 0)  # drift back to the bottom
        return _action(dx, dy, np.ones(game.num_envs, dtype=bool))


class BricksPlayer(ScriptedAgent):
    """Launch towards the bricks; meet a falling ball where it will cross the paddle's line (walls folded in),
    a little off-centre so that it rebounds towards the bricks left."""

    def plan(self, game: bricks.Bricks) -> np.ndarray:
        paddle = game.pos[:, 0] + bricks.PADDLE_W / 2
        cols = np.arange(1, bricks.COLS - 1) * TILE + TILE / 2  # (14,) brick centres, px
        left = (game.state()["bricks"] > 0).sum(1)  # (N, 14) bricks left per column
        aim = (left * cols).sum(1) / np.maximum(left.sum(1), 1)  # their centre of mass, px
        x, y = game.ball[:, 0], game.ball[:, 1]
        vx, vy = game.ball_vel[:, 0], game.ball_vel[:, 1]
        steps = np.where(vy > 0, (bricks.PADDLE_Y - bricks.BALL_BOX - y) / np.maximum(vy, 1e-6), 0.0)
        low, high = bricks.FIELD_LEFT, bricks.FIELD_RIGHT - bricks.BALL_BOX
        fold = np.mod(x + vx * steps - low, 2 * (high - low))
        landing = low + np.where(fold <= high - low, fold, 2 * (high - low) - fold) + bricks.BALL_BOX / 2
        # hit the ball on the paddle's side away from the bricks, which sends it towards them
        side = np.clip((aim - landing) / 32, -1, 1) * bricks.PADDLE_W * 0.45
        target = np.where(vy > 0, landing - side, x + bricks.BALL_BOX / 2)
        gap = target - paddle
        dx = np.where(np.abs(gap) > game.paddle_speed / 2, np.sign(gap), 0).astype(np.int64)
        launch_dx = np.sign(np.round((aim - paddle) / 48)).astype(np.int64)  # only well off-centre: angled
        dx = np.where(game.attached, launch_dx, dx)
        return _action(dx, np.zeros_like(dx), game.attached)


SCRIPTED = {"platformer": PlatformerPlayer, "maze": MazePlayer, "shooter": ShooterPilot, "bricks": BricksPlayer}
