"""Platformer: run right across a scrolling level of ground, gaps and brick ledges to the flag.

Gravity, jumping, solid tiles, pits, patrolling enemies (stomp them or die), coins, and a camera
that follows the player. Controls: LEFT/RIGHT run, UP jumps, FIRE sprints, DOWN falls faster.
Each seed varies the layout, palette, gravity, jump strength, run and enemy speeds; gaps are
generated no wider than the seed's physics can clear.
"""

from __future__ import annotations

import numpy as np

from core.games.art import TILE
from core.games.base import FRAME_SIZE, Buttons, VecGame
from core.games.physics import DOWN, UP, move_and_collide, overlap, standing

SKY, GROUND, BRICK, COIN, FLAG = range(5)
PLAYER, ENEMY = range(2)
ROWS, COLS = 16, 128  # level: 256 x 2048 pixels
PLAYER_W, PLAYER_H = 12, 14
ENEMY_W, ENEMY_H = 14, 14
NUM_ENEMIES = 10
MAX_FALL = 10.0  # px/frame: keeps every move under one tile
FLAG_COL = COLS - 4
RUN_SPEEDS = (2.0, 3.0)  # px/frame, drawn per level
SPRINT = 1.6  # FIRE multiplies the run speed


class Platformer(VecGame):
    name = "platformer"
    description = "side-scrolling platformer: gravity, jumps, gaps, stompable enemies, coins, a goal flag"
    tiles = ("sky", "ground", "brick", "coin", "flag")
    sprites = ("player", "enemy")
    map_shape = (ROWS, COLS)

    def _allocate(self, n):
        self.pos = np.zeros((n, 2))  # player top-left (x, y), level pixels
        self.vel = np.zeros((n, 2))  # px/frame
        self.on_ground = np.zeros(n, dtype=bool)
        self.contacts = np.zeros((n, 4), dtype=bool)  # blocked left, right, up, down this frame
        self.enemy_pos = np.zeros((n, NUM_ENEMIES, 2))
        self.enemy_vx = np.zeros((n, NUM_ENEMIES))
        self.enemy_range = np.zeros((n, NUM_ENEMIES, 2))  # patrol x bounds
        self.enemy_alive = np.zeros((n, NUM_ENEMIES), dtype=bool)
        self.gravity = np.zeros(n)
        self.jump_speed = np.zeros(n)
        self.run_speed = np.zeros(n)

    def _generate(self, i, rng):
        g, jump, run = rng.uniform(0.45, 0.6), rng.uniform(7.5, 9.0), rng.uniform(*RUN_SPEEDS)
        self.gravity[i], self.jump_speed[i], self.run_speed[i] = g, jump, run
        tiles = np.full((ROWS, COLS), SKY, dtype=np.uint8)
        segments = []  # (first col, last col, ground row)
        col, row = 0, 12
        while col < COLS - 6:
            width = 10 if col == 0 else int(rng.integers(4, 11))
            last = min(col + width, COLS) - 1
            tiles[row:, col : last + 1] = GROUND
            segments.append((col, last, row))
            if rng.random() < 0.4 and last - col >= 4:  # a brick ledge with coins on it
                ledge_row, start = row - 4, col + int(rng.integers(0, 2))
                tiles[ledge_row, start : start + 3] = BRICK
                tiles[ledge_row - 1, start : start + 3] = COIN
            else:
                tiles[row - 1, col + 1 : last : 2] = np.where(rng.random(len(range(col + 1, last, 2))) < 0.4, COIN, SKY)
            next_row = int(np.clip(row + rng.integers(-2, 3), 10, 13))
            rise = max(row - next_row, 0) * TILE
            # reach of a jump at run speed that lands `rise` px higher, less the body and a margin
            air = (jump + np.sqrt(jump**2 - 2 * g * rise)) / g
            widest = int(np.clip((air * run - PLAYER_W - 10) // TILE, 1, 4))
            col = last + 1 + int(rng.integers(1, widest + 1))
            row = next_row
        tiles[12:, col:] = GROUND  # the final stretch, with the flag
        tiles[11, FLAG_COL] = FLAG
        segments.append((col, COLS - 1, 12))
        self.tilemap[i] = tiles

        self.pos[i] = (2 * TILE, 12 * TILE - PLAYER_H)
        self.vel[i], self.on_ground[i], self.contacts[i] = 0, True, False
        choices = [s for s in segments[1:-1] if s[1] - s[0] >= 3]
        picks = rng.choice(len(choices), size=min(NUM_ENEMIES, len(choices)), replace=False) if choices else []
        self.enemy_alive[i] = False
        for k, pick in enumerate(sorted(picks)):
            first, last, row = choices[pick]
            self.enemy_range[i, k] = (first * TILE, (last + 1) * TILE - ENEMY_W)
            self.enemy_pos[i, k] = (rng.uniform(*self.enemy_range[i, k]), row * TILE - ENEMY_H)
            self.enemy_vx[i, k] = rng.uniform(0.5, 1.5) * rng.choice((-1, 1))
            self.enemy_alive[i, k] = True

    def _advance(self, b: Buttons):
        n = np.arange(self.num_envs)
        solid = (self.tilemap == GROUND) | (self.tilemap == BRICK)
        self.vel[:, 0] = b.dx * self.run_speed * np.where(b.fire, SPRINT, 1.0)
        jump = (b.dy < 0) & self.on_ground
        self.vel[:, 1] = np.where(jump, -self.jump_speed, self.vel[:, 1])
        fast_fall = (b.dy > 0) & ~self.on_ground
        self.vel[:, 1] = np.minimum(self.vel[:, 1] + self.gravity * np.where(fast_fall, 2.0, 1.0), MAX_FALL)
        x, y, self.contacts = move_and_collide(
            solid, self.pos[:, 0], self.pos[:, 1], self.vel[:, 0], self.vel[:, 1], PLAYER_W, PLAYER_H
        )
        self.pos[:, 0], self.pos[:, 1] = x, y
        self.vel[:, 1] = np.where(self.contacts[:, DOWN] | self.contacts[:, UP], 0.0, self.vel[:, 1])
        self.on_ground = standing(solid, x, y, PLAYER_W, PLAYER_H)

        # coins under the player's four corners
        for cx, cy in ((0, 0), (PLAYER_W - 1, 0), (0, PLAYER_H - 1), (PLAYER_W - 1, PLAYER_H - 1)):
            row = np.clip((np.floor(y).astype(np.int64) + cy) // TILE, 0, ROWS - 1)
            col = np.clip((np.floor(x).astype(np.int64) + cx) // TILE, 0, COLS - 1)
            for i in np.flatnonzero(self.tilemap[n, row, col] == COIN):
                self.repaint(i, row[i], col[i], SKY)
                self.score[i] += 1
        self.won |= x + PLAYER_W > FLAG_COL * TILE  # passing the flag's pole at any height

        # enemies patrol their ground segment; landing on one from above stomps it
        ex = self.enemy_pos[..., 0] + self.enemy_vx
        turn = (ex < self.enemy_range[..., 0]) | (ex > self.enemy_range[..., 1])
        self.enemy_vx = np.where(turn, -self.enemy_vx, self.enemy_vx)
        self.enemy_pos[..., 0] = np.clip(ex, self.enemy_range[..., 0], self.enemy_range[..., 1])
        touch = self.enemy_alive & overlap(
            x[:, None], y[:, None], PLAYER_W, PLAYER_H, self.enemy_pos[..., 0], self.enemy_pos[..., 1], ENEMY_W, ENEMY_H
        )
        from_above = (self.vel[:, None, 1] > 0) & (y[:, None] + PLAYER_H - self.enemy_pos[..., 1] < 8)
        stomped = touch & from_above
        self.enemy_alive &= ~stomped
        self.score += 2 * stomped.sum(1)
        self.vel[:, 1] = np.where(stomped.any(1), -0.6 * self.jump_speed, self.vel[:, 1])
        hurt = (touch & ~from_above).any(1)
        fell = y > ROWS * TILE
        self.done |= self.won | hurt | fell

    def _follow_camera(self):
        self.camera[:, 0] = np.clip(
            np.floor(self.pos[:, 0]).astype(np.int64) + PLAYER_W // 2 - FRAME_SIZE // 2, 0, COLS * TILE - FRAME_SIZE
        )

    def _draw(self, frames):
        env, slot = np.nonzero(self.enemy_alive)
        self.sprite_draws(
            frames, env, np.full(len(env), ENEMY), self.enemy_pos[env, slot, 0] - 1, self.enemy_pos[env, slot, 1] - 2
        )
        n = np.arange(self.num_envs)
        self.sprite_draws(frames, n, np.full(len(n), PLAYER), self.pos[:, 0] - 2, self.pos[:, 1] - 2)

    def state(self):
        return {
            "player_pos": self.pos.copy(),
            "player_vel": self.vel.copy(),
            "on_ground": self.on_ground.copy(),
            "contacts": self.contacts.copy(),
            "enemies": np.concatenate([self.enemy_pos, self.enemy_vx[..., None], self.enemy_alive[..., None]], -1),
            "score": self.score.copy(),
            "camera": self.camera.copy(),
            "time": self.t.copy(),
        }

    def region(self):
        return (np.floor(self.pos[:, 0]).astype(np.int64) // 64) * 4 + np.clip(
            np.floor(self.pos[:, 1]).astype(np.int64) // 64, 0, 3
        )
