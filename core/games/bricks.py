"""Bricks: a Breakout/Arkanoid-like game: a paddle at the bottom keeps a ball in play that breaks bricks.

The ball rests on the paddle until FIRE launches it (straight at the level's serve angle, or 30 degrees
towards a held LEFT/RIGHT). It bounces off the walls, the bricks (which break and score 10, 20 or 30 by
kind) and the paddle, whose hit point sets the rebound angle (up to 60 degrees from vertical at its
ends). A ball that falls past the paddle costs a life and rests on the paddle again; the level is won
when the last brick breaks and lost with the last life. Controls: LEFT/RIGHT move the paddle, FIRE
launches. Each seed varies the brick layout, palette, paddle and ball speeds and the serve angle.

It is the project's held-out game (core.games.HELD_OUT): no shipped model trains on it, so it is the test
bed for bringing a game of your own.
"""

from __future__ import annotations

import numpy as np

from core.games.art import TILE
from core.games.base import FRAME_SIZE, Buttons, VecGame
from core.games.physics import DOWN, LEFT, RIGHT, UP, move_and_collide
from core.games.render import draw_numbers

SKY, WALL, BLOCK_LOW, BLOCK_MID, BLOCK_TOP = range(5)
PADDLE_LEFT, PADDLE_RIGHT, BALL, LIFE = range(4)
ROWS = COLS = 16  # one screen: row 0 shows score and lives, row 1 and columns 0 and 15 are walls
FIELD_LEFT, FIELD_RIGHT = TILE, (COLS - 1) * TILE  # px: the playfield between the side walls
BRICK_ROWS = (3, 10)  # tile rows [first, stop) that may hold bricks; columns 1..14
PADDLE_W, PADDLE_H, PADDLE_Y = 28, 8, 224  # px; PADDLE_Y is the paddle's top
BALL_BOX = 10  # px
LIVES = 3
LAUNCH = np.radians(30)  # launch angle from vertical when LEFT or RIGHT is held with FIRE
MAX_REBOUND = np.radians(60)  # rebound angle from vertical off the paddle's very end
POINTS = np.array([0, 0, 10, 20, 30])  # per tile id: what breaking it scores


class Bricks(VecGame):
    name = "bricks"
    description = (
        "breakout: a paddle, a ball that bounces and breaks bricks, FIRE to launch, lives "
        "(held out: no shipped model trains on it)"
    )
    tiles = ("sky", "wall", "block_low", "block_mid", "block_top")
    sprites = ("paddle_left", "paddle_right", "ball", "life")
    map_shape = (ROWS, COLS)

    def _allocate(self, n):
        self.pos = np.zeros((n, 2))  # paddle top-left (x, y), px
        self.vel = np.zeros((n, 2))  # paddle px/frame
        self.ball = np.zeros((n, 2))  # ball top-left (x, y), px
        self.ball_vel = np.zeros((n, 2))  # px/frame; zero while the ball rests on the paddle
        self.attached = np.zeros(n, dtype=bool)  # the ball rests on the paddle, waiting for FIRE
        self.contacts = np.zeros((n, 4), dtype=bool)  # the ball bounced off left, right, up, down (the paddle)
        self.lives = np.zeros(n, dtype=np.int64)
        self.bricks_left = np.zeros(n, dtype=np.int64)
        self.bricks_start = np.zeros(n, dtype=np.int64)
        self.paddle_speed = np.zeros(n)
        self.ball_speed = np.zeros(n)
        self.serve = np.zeros(n)  # the launch angle (radians from vertical) of FIRE alone

    def _generate(self, i, rng):
        self.paddle_speed[i], self.ball_speed[i] = rng.uniform(4.0, 6.0), rng.uniform(2.5, 3.75)
        self.serve[i] = np.radians(rng.uniform(10, 25)) * rng.choice((-1, 1))
        tiles = np.full((ROWS, COLS), SKY, dtype=np.uint8)
        tiles[1, :] = WALL
        tiles[1:, 0] = tiles[1:, COLS - 1] = WALL
        first = BRICK_ROWS[0] + int(rng.integers(0, 2))
        count = int(rng.integers(4, BRICK_ROWS[1] - first + 1))
        tiles[first : first + count, 1 : COLS - 1] = _layout(rng, count)
        self.tilemap[i] = tiles
        self.bricks_left[i] = self.bricks_start[i] = int((tiles >= BLOCK_LOW).sum())
        self.pos[i] = ((FRAME_SIZE - PADDLE_W) // 2, PADDLE_Y)
        self.vel[i], self.contacts[i], self.lives[i] = 0, False, LIVES
        self._rest_ball(np.array([i]))

    def _rest_ball(self, envs: np.ndarray) -> None:
        """Put the ball of `envs` on the middle of their paddle, waiting for FIRE."""
        self.attached[envs] = True
        self.ball_vel[envs] = 0
        self.ball[envs, 0] = self.pos[envs, 0] + (PADDLE_W - BALL_BOX) / 2
        self.ball[envs, 1] = PADDLE_Y - BALL_BOX

    def _advance(self, b: Buttons):
        self.vel[:, 0] = b.dx * self.paddle_speed
        self.pos[:, 0] = np.clip(self.pos[:, 0] + self.vel[:, 0], FIELD_LEFT, FIELD_RIGHT - PADDLE_W)

        launch = self.attached & b.fire
        angle = np.where(b.dx != 0, b.dx * LAUNCH, self.serve)
        self.ball_vel = np.where(
            launch[:, None], self.ball_speed[:, None] * np.stack([np.sin(angle), -np.cos(angle)], 1), self.ball_vel
        )
        self.attached &= ~launch
        self.ball[self.attached, 0] = self.pos[self.attached, 0] + (PADDLE_W - BALL_BOX) / 2  # it rides along

        # the ball flies through the tile grid: a blocked axis reverses, and the bricks it met break
        solid = self.tilemap != SKY
        x0, y0 = self.ball[:, 0], self.ball[:, 1]
        x, y, self.contacts = move_and_collide(
            solid, x0, y0, self.ball_vel[:, 0], self.ball_vel[:, 1], BALL_BOX, BALL_BOX
        )
        self.ball_vel[:, 0] *= np.where(self.contacts[:, LEFT] | self.contacts[:, RIGHT], -1, 1)
        self.ball_vel[:, 1] *= np.where(self.contacts[:, UP] | self.contacts[:, DOWN], -1, 1)
        self._break(*_struck(x0, y0, x, y, self.contacts))

        # the paddle's top sends the ball back up at an angle set by where it landed
        on_paddle = (
            (self.ball_vel[:, 1] > 0)
            & (y0 + BALL_BOX <= PADDLE_Y + 1)
            & (y + BALL_BOX >= PADDLE_Y)
            & (x + BALL_BOX > self.pos[:, 0])
            & (x < self.pos[:, 0] + PADDLE_W)
        )
        offset = (x + BALL_BOX / 2 - self.pos[:, 0] - PADDLE_W / 2) / ((PADDLE_W + BALL_BOX) / 2)
        rebound = np.clip(offset, -1, 1) * MAX_REBOUND
        bounce = self.ball_speed[:, None] * np.stack([np.sin(rebound), -np.cos(rebound)], 1)
        self.ball_vel = np.where(on_paddle[:, None], bounce, self.ball_vel)
        y = np.where(on_paddle, PADDLE_Y - BALL_BOX, y)
        self.contacts[:, DOWN] |= on_paddle
        self.ball[:, 0], self.ball[:, 1] = x, y

        lost = ~self.attached & (y > FRAME_SIZE)
        self.lives -= lost
        self._rest_ball(np.flatnonzero(lost))
        self.won |= self.bricks_left == 0
        self.done |= self.won | (self.lives <= 0)

    def _break(self, env: np.ndarray, row: np.ndarray, col: np.ndarray) -> None:
        """Break the bricks among the struck cells (env, row, col) (M,): score them and clear their tiles."""
        bricks = self.tilemap[env, row, col] >= BLOCK_LOW
        for i, r, c in sorted({(int(i), int(r), int(c)) for i, r, c in zip(env[bricks], row[bricks], col[bricks])}):
            self.score[i] += POINTS[self.tilemap[i, r, c]]
            self.bricks_left[i] -= 1
            self.repaint(i, r, c, SKY)

    def _draw(self, frames):
        n = np.arange(self.num_envs)
        x, y = self.pos[:, 0], self.pos[:, 1]
        self.sprite_draws(frames, n, np.full(len(n), PADDLE_LEFT), x - 2, y - 2)
        self.sprite_draws(frames, n, np.full(len(n), PADDLE_RIGHT), x + PADDLE_W / 2, y - 2)
        self.sprite_draws(frames, n, np.full(len(n), BALL), self.ball[:, 0] - 2, self.ball[:, 1] - 2)
        env, k = np.nonzero(np.arange(LIVES)[None, :] < self.lives[:, None])
        self.sprite_draws(frames, env, np.full(len(env), LIFE), FRAME_SIZE - 18 - 14 * k, np.full(len(env), 2))
        draw_numbers(frames, self.score, 4, 3, digits=5)

    def state(self):
        return {
            "player_pos": self.pos.copy(),
            "player_vel": self.vel.copy(),
            "ball": np.concatenate([self.ball, self.ball_vel], 1),
            "ball_attached": self.attached.copy(),
            "contacts": self.contacts.copy(),
            "bricks": self.tilemap[:, BRICK_ROWS[0] : BRICK_ROWS[1], 1 : COLS - 1].copy(),  # tile ids, 0 = none
            "lives": self.lives.copy(),
            "score": self.score.copy(),
            "time": self.t.copy(),
        }

    def region(self):
        # how far through the level (bricks broken) and how high the ball flies: play that keeps the ball
        # up among the bricks reaches more of the level than play that drops it
        broken = self.bricks_start - self.bricks_left
        return (broken // 4) * 8 + np.clip(np.floor(self.ball[:, 1]).astype(np.int64), 0, FRAME_SIZE - 1) // 32


def _layout(rng: np.random.Generator, rows: int) -> np.ndarray:
    """(rows, 14) tile ids of a level's bricks: a seeded pattern, left-right symmetric like a designed level,
    its top third worth most."""
    cols = COLS - 2
    pattern = int(rng.integers(0, 5))
    r, c = np.indices((rows, cols // 2))
    if pattern == 0:  # full rows, a few knocked out
        half = rng.random((rows, cols // 2)) < 0.9
    elif pattern == 1:  # checkerboard
        half = (r + c) % 2 == int(rng.integers(0, 2))
    elif pattern == 2:  # a pyramid: rows widen downwards
        half = c >= cols // 2 - 1 - (r * (cols // 2) // rows) - int(rng.integers(0, 2))
    elif pattern == 3:  # random holes
        half = rng.random((rows, cols // 2)) < rng.uniform(0.5, 0.8)
    else:  # column bands with gaps between them
        half = np.broadcast_to(rng.random(cols // 2) < 0.65, (rows, cols // 2))
    filled = np.concatenate([half, half[:, ::-1]], 1)
    if filled.sum() < 12:  # too sparse to be a level: fill it
        filled[:] = True
    third = np.arange(rows) * 3 // rows  # 0, 1, 2 from the top
    kinds = np.array([BLOCK_TOP, BLOCK_MID, BLOCK_LOW])[third]
    return np.where(filled, kinds[:, None], SKY).astype(np.uint8)


def _struck(x0, y0, x, y, contacts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tile cells (env, row, col) a ball moved from (x0, y0) to (x, y) by move_and_collide was stopped by.

    The horizontal pass ran at the old height and the vertical pass at the new x; a stopped box sits flush
    against the cell it hit, whose column (row) is the one just past its leading edge."""
    n = np.arange(len(x))
    hit_col = np.where(contacts[:, RIGHT], (x + BALL_BOX) // TILE, x // TILE - 1).astype(np.int64)
    hit_row = np.where(contacts[:, DOWN], (y + BALL_BOX) // TILE, y // TILE - 1).astype(np.int64)
    rows_x = np.floor(y0).astype(np.int64) // TILE, (np.ceil(y0 + BALL_BOX).astype(np.int64) - 1) // TILE
    cols_y = np.floor(x).astype(np.int64) // TILE, (np.ceil(x + BALL_BOX).astype(np.int64) - 1) // TILE
    horizontal = contacts[:, LEFT] | contacts[:, RIGHT]
    vertical = contacts[:, UP] | contacts[:, DOWN]
    env = np.concatenate([n[horizontal]] * 2 + [n[vertical]] * 2)
    row = np.concatenate([rows_x[0][horizontal], rows_x[1][horizontal], hit_row[vertical], hit_row[vertical]])
    col = np.concatenate([hit_col[horizontal], hit_col[horizontal], cols_y[0][vertical], cols_y[1][vertical]])
    inside = (row >= 0) & (row < ROWS) & (col >= 0) & (col < COLS)
    return env[inside], row[inside], col[inside]
