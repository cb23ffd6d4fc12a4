"""Top-down dungeon: a seeded maze with loops, gems, a key, locked doors and wandering enemies.

The exit sits in the cell farthest from the start, behind doors that open once the player holds
the key. Enemies wander (turning when blocked, or at random); touching one costs a heart, FIRE
swings a sword that defeats enemies in front. Controls: the 8 directions move, FIRE attacks.
The map (512 x 512 px) is larger than the view, so the camera follows the player.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from core.games.art import TILE
from core.games.base import FRAME_SIZE, Buttons, VecGame
from core.games.physics import hashed_uniform, move_and_collide, overlap

FLOOR, WALL, GEM, KEY, DOOR, EXIT = range(6)
PLAYER, ENEMY, SLASH = range(3)
ROWS = COLS = 32  # tiles; cells are 2x2 floor tiles on a 3-tile pitch
CELLS = 10
BOX = 12  # player and enemy box, px
NUM_ENEMIES, NUM_GEMS = 6, 12
HEALTH, INVULNERABLE = 3, 30  # hearts; frames of safety after a hit
STEPS = np.array([(0, -1), (0, 1), (-1, 0), (1, 0)])  # enemy directions (dx, dy)


def _cell_origin(r: int, c: int) -> tuple[int, int]:
    """Top-left tile (row, col) of maze cell (r, c)."""
    return 3 * r + 1, 3 * c + 1


class Maze(VecGame):
    name = "maze"
    description = "top-down dungeon: maze with loops, gems, key and locked doors, wandering enemies, sword"
    tiles = ("floor", "wall", "gem", "key", "door", "exit")
    sprites = ("player", "enemy", "slash")
    map_shape = (ROWS, COLS)

    def _allocate(self, n):
        self.pos = np.zeros((n, 2))
        self.vel = np.zeros((n, 2))
        self.contacts = np.zeros((n, 4), dtype=bool)
        self.facing = np.zeros((n, 2))
        self.has_key = np.zeros(n, dtype=bool)
        self.health = np.zeros(n, dtype=np.int64)
        self.invulnerable = np.zeros(n, dtype=np.int64)
        self.attacking = np.zeros(n, dtype=bool)
        self.enemy_pos = np.zeros((n, NUM_ENEMIES, 2))
        self.enemy_dir = np.zeros((n, NUM_ENEMIES), dtype=np.int64)
        self.enemy_alive = np.zeros((n, NUM_ENEMIES), dtype=bool)
        self.speed = np.zeros(n)
        self.enemy_speed = np.zeros(n)

    def _generate(self, i, rng):
        self.speed[i], self.enemy_speed[i] = rng.uniform(1.5, 2.5), rng.uniform(0.7, 1.3)
        open_walls = set()  # passages between cells: ((r, c), (r2, c2))
        seen, stack = {(0, 0)}, [(0, 0)]
        while stack:  # depth-first maze
            r, c = stack[-1]
            nexts = [
                (r + dr, c + dc)
                for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0))
                if 0 <= r + dr < CELLS and 0 <= c + dc < CELLS and (r + dr, c + dc) not in seen
            ]
            if not nexts:
                stack.pop()
                continue
            step = nexts[rng.integers(len(nexts))]
            open_walls.add(frozenset(((r, c), step)))
            seen.add(step)
            stack.append(step)
        links = {cell: [] for cell in seen}
        for wall in open_walls:
            a, b = tuple(wall)
            links[a].append(b)
            links[b].append(a)
        dist, queue = {(0, 0): 0}, deque([(0, 0)])
        while queue:
            cell = queue.popleft()
            for other in links[cell]:
                if other not in dist:
                    dist[other] = dist[cell] + 1
                    queue.append(other)
        exit_cell = max(dist, key=dist.get)
        for r in range(CELLS):  # knock out extra walls: loops make a dungeon, not a tree
            for c in range(CELLS):
                for other in ((r, c + 1), (r + 1, c)):
                    if (
                        other[0] < CELLS
                        and other[1] < CELLS
                        and exit_cell not in ((r, c), other)
                        and rng.random() < 0.12
                    ):
                        open_walls.add(frozenset(((r, c), other)))

        tiles = np.full((ROWS, COLS), WALL, dtype=np.uint8)
        for r in range(CELLS):
            for c in range(CELLS):
                tr, tc = _cell_origin(r, c)
                tiles[tr : tr + 2, tc : tc + 2] = FLOOR
        for wall in open_walls:
            (r1, c1), (r2, c2) = sorted(wall)
            tr, tc = _cell_origin(r1, c1)
            kind = DOOR if exit_cell in wall else FLOOR
            if r1 == r2:
                tiles[tr : tr + 2, tc + 2] = kind
            else:
                tiles[tr + 2, tc : tc + 2] = kind
        tr, tc = _cell_origin(*exit_cell)
        tiles[tr : tr + 2, tc : tc + 2] = EXIT
        cells = [cell for cell in seen if cell not in ((0, 0), exit_cell)]
        order = rng.permutation(len(cells))
        key_cell = cells[order[0]]
        tiles[_cell_origin(*key_cell)] = KEY
        for k in order[1 : 1 + NUM_GEMS]:
            tr, tc = _cell_origin(*cells[k])
            tiles[tr + int(rng.integers(2)), tc + int(rng.integers(2))] = GEM
        self.tilemap[i] = tiles

        self.pos[i] = (TILE + 10, TILE + 10)
        self.vel[i], self.contacts[i], self.facing[i] = 0, False, (1, 0)
        self.has_key[i], self.health[i], self.invulnerable[i], self.attacking[i] = False, HEALTH, 0, False
        far = [cell for cell in cells if dist[cell] >= 4]
        for k, pick in enumerate(rng.choice(len(far), size=NUM_ENEMIES, replace=len(far) < NUM_ENEMIES)):
            tr, tc = _cell_origin(*far[pick])
            self.enemy_pos[i, k] = (tc * TILE + 10, tr * TILE + 10)
        self.enemy_dir[i] = rng.integers(0, 4, NUM_ENEMIES)
        self.enemy_alive[i] = True

    def _advance(self, b: Buttons):
        n = np.arange(self.num_envs)
        moving = (b.dx != 0) | (b.dy != 0)
        diagonal = np.where((b.dx != 0) & (b.dy != 0), np.sqrt(0.5), 1.0)
        self.vel[:, 0], self.vel[:, 1] = b.dx * self.speed * diagonal, b.dy * self.speed * diagonal
        self.facing = np.where(moving[:, None], np.stack([b.dx, b.dy], 1), self.facing)
        solid = (self.tilemap == WALL) | ((self.tilemap == DOOR) & ~self.has_key[:, None, None])
        x, y, self.contacts = move_and_collide(
            solid, self.pos[:, 0], self.pos[:, 1], self.vel[:, 0], self.vel[:, 1], BOX, BOX
        )
        self.pos[:, 0], self.pos[:, 1] = x, y

        for cx, cy in ((0, 0), (BOX - 1, 0), (0, BOX - 1), (BOX - 1, BOX - 1)):
            row = (np.floor(y).astype(np.int64) + cy) // TILE
            col = (np.floor(x).astype(np.int64) + cx) // TILE
            kind = self.tilemap[n, row, col]
            for i in np.flatnonzero((kind == GEM) | (kind == KEY) | (kind == DOOR)):
                self.score[i] += 1 if kind[i] == GEM else 0
                self.has_key[i] |= kind[i] == KEY
                self.repaint(i, row[i], col[i], FLOOR)
            self.won |= kind == EXIT

        # enemies: keep going, turn when blocked or on a hashed coin flip
        env = np.repeat(n, NUM_ENEMIES)
        step = STEPS[self.enemy_dir] * self.enemy_speed[:, None, None]  # (N, E, 2)
        ex, ey, blocked = move_and_collide(
            solid,
            self.enemy_pos[..., 0].ravel(),
            self.enemy_pos[..., 1].ravel(),
            step[..., 0].ravel(),
            step[..., 1].ravel(),
            BOX,
            BOX,
            env,
        )
        self.enemy_pos[..., 0], self.enemy_pos[..., 1] = ex.reshape(-1, NUM_ENEMIES), ey.reshape(-1, NUM_ENEMIES)
        roll = hashed_uniform(self.seeds, self.t, salt=1, k=2 * NUM_ENEMIES)
        turn = blocked.any(1).reshape(-1, NUM_ENEMIES) | (roll[:, :NUM_ENEMIES] < 1 / 60)
        self.enemy_dir = np.where(turn, (roll[:, NUM_ENEMIES:] * 4).astype(np.int64), self.enemy_dir)

        self.attacking = b.fire
        sx, sy = x - 4 + 14 * self.facing[:, 0], y - 4 + 14 * self.facing[:, 1]  # 20x20 sword box in front
        slain = (
            self.enemy_alive
            & self.attacking[:, None]
            & overlap(sx[:, None], sy[:, None], 20, 20, self.enemy_pos[..., 0], self.enemy_pos[..., 1], BOX, BOX)
        )
        self.enemy_alive &= ~slain
        self.score += 3 * slain.sum(1)
        touch = (
            self.enemy_alive
            & overlap(x[:, None], y[:, None], BOX, BOX, self.enemy_pos[..., 0], self.enemy_pos[..., 1], BOX, BOX)
        ).any(1)
        hit = touch & (self.invulnerable == 0)
        self.health -= hit
        self.invulnerable = np.where(hit, INVULNERABLE, np.maximum(self.invulnerable - 1, 0))
        self.done |= self.won | (self.health <= 0)

    def _follow_camera(self):
        centre = np.floor(self.pos).astype(np.int64) + BOX // 2 - FRAME_SIZE // 2
        self.camera[:] = np.clip(centre, 0, ROWS * TILE - FRAME_SIZE)

    def _draw(self, frames):
        env, slot = np.nonzero(self.enemy_alive)
        self.sprite_draws(
            frames, env, np.full(len(env), ENEMY), self.enemy_pos[env, slot, 0] - 2, self.enemy_pos[env, slot, 1] - 2
        )
        shown = np.flatnonzero((self.invulnerable // 3) % 2 == 0)  # blink while invulnerable
        self.sprite_draws(frames, shown, np.full(len(shown), PLAYER), self.pos[shown, 0] - 2, self.pos[shown, 1] - 2)
        swing = np.flatnonzero(self.attacking)
        self.sprite_draws(
            frames,
            swing,
            np.full(len(swing), SLASH),
            self.pos[swing, 0] - 2 + 14 * self.facing[swing, 0],
            self.pos[swing, 1] - 2 + 14 * self.facing[swing, 1],
        )

    def state(self):
        enemy_vel = STEPS[self.enemy_dir] * self.enemy_speed[:, None, None]
        return {
            "player_pos": self.pos.copy(),
            "player_vel": self.vel.copy(),
            "contacts": self.contacts.copy(),
            "facing": self.facing.copy(),
            "has_key": self.has_key.copy(),
            "health": self.health.copy(),
            "enemies": np.concatenate([self.enemy_pos, enemy_vel, self.enemy_alive[..., None]], -1),
            "score": self.score.copy(),
            "camera": self.camera.copy(),
            "time": self.t.copy(),
        }

    def region(self):
        cell = np.floor(self.pos).astype(np.int64) // 64
        return cell[:, 0] * 8 + cell[:, 1]
