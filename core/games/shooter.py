"""Shooter: a ship over a scrolling starfield fights waves of aliens that sweep, descend and fire.

FIRE shoots (with a cooldown); clearing a wave brings a faster one; alien shots or a formation
that reaches the ship cost a life, and the game ends when the lives run out. The score is drawn
top-left and the lives top-right. Controls: the 8 directions move the ship in the lower half.
"""

from __future__ import annotations

import numpy as np

from core.games.art import TILE
from core.games.base import FRAME_SIZE, Buttons, VecGame
from core.games.physics import hashed_uniform, overlap
from core.games.render import blit, blit_layers, draw_numbers

SPACE, STAR = range(2)
SHIP, ALIEN, BULLET, ENEMY_BULLET, LIFE = range(5)
ROWS, COLS = 32, 16  # a 256 x 512 starfield whose halves are equal, so it scrolls seamlessly
FORMATION = (3, 6)  # alien rows, columns
NUM_ALIENS = FORMATION[0] * FORMATION[1]
MAX_BULLETS, MAX_ENEMY_BULLETS = 6, 6
LIVES, INVULNERABLE, COOLDOWN = 3, 45, 8
SHIP_BOX, ALIEN_BOX, SHOT_W, SHOT_H = 14, 12, 4, 8
SHIP_TOP = 136  # the ship stays below this line
SPACING = 28  # px between aliens in the formation
LAYER_H, LAYER_W = SPACING * (FORMATION[0] - 1) + TILE, SPACING * (FORMATION[1] - 1) + TILE
# (LAYER_H, LAYER_W) -> which alien's sprite cell each pixel of the formation layer is in (-1: none)
_CELL = np.full((LAYER_H, LAYER_W), -1)
for _a in range(NUM_ALIENS):
    _r, _c = divmod(_a, FORMATION[1])
    _CELL[_r * SPACING : _r * SPACING + TILE, _c * SPACING : _c * SPACING + TILE] = _a
_IN_CELL = tuple(np.indices((LAYER_H, LAYER_W))[:, _CELL >= 0] % SPACING)  # (row, col) inside its sprite


class Shooter(VecGame):
    name = "shooter"
    description = "vertical shooter: a ship, bullets on FIRE, descending alien waves that shoot back, score and lives"
    tiles = ("space", "star")
    sprites = ("ship", "alien", "bullet", "enemy_bullet", "life")
    map_shape = (ROWS, COLS)

    def _allocate(self, n):
        self.pos = np.zeros((n, 2))
        self.vel = np.zeros((n, 2))
        self.lives = np.zeros(n, dtype=np.int64)
        self.invulnerable = np.zeros(n, dtype=np.int64)
        self.cooldown = np.zeros(n, dtype=np.int64)
        self.wave = np.zeros(n, dtype=np.int64)
        self.formation = np.zeros((n, 2))  # top-left of the formation grid
        self.formation_vx = np.zeros(n)
        self.alien_alive = np.zeros((n, NUM_ALIENS), dtype=bool)
        # the formation is drawn as one layer per env (see render.blit_layers), repainted on kills
        self.layer_rgb = np.zeros((n, LAYER_H, LAYER_W, 3), dtype=np.uint8)
        self.layer_art = np.zeros((n, LAYER_H, LAYER_W), dtype=bool)  # every alien's sprite mask
        self.layer_mask = np.zeros((n, LAYER_H, LAYER_W), dtype=bool)  # the living ones
        self.bullets = np.zeros((n, MAX_BULLETS, 2))
        self.bullet_alive = np.zeros((n, MAX_BULLETS), dtype=bool)
        self.enemy_bullets = np.zeros((n, MAX_ENEMY_BULLETS, 2))
        self.enemy_bullet_alive = np.zeros((n, MAX_ENEMY_BULLETS), dtype=bool)
        self.speed = np.zeros(n)
        self.alien_speed = np.zeros(n)
        self.fire_rate = np.zeros(n)
        self.scroll = np.zeros(n)

    def _generate(self, i, rng):
        half = np.where(rng.random((ROWS // 2, COLS)) < 0.15, STAR, SPACE).astype(np.uint8)
        self.tilemap[i] = np.concatenate([half, half])
        self.speed[i], self.alien_speed[i] = rng.uniform(2.5, 3.5), rng.uniform(0.6, 1.2)
        self.fire_rate[i], self.scroll[i] = rng.uniform(0.01, 0.025), rng.uniform(0.5, 2.0)
        self.pos[i] = ((FRAME_SIZE - SHIP_BOX) / 2, FRAME_SIZE - 32)
        self.vel[i], self.lives[i], self.invulnerable[i], self.cooldown[i], self.wave[i] = 0, LIVES, 0, 0, 0
        self.bullet_alive[i], self.enemy_bullet_alive[i] = False, False
        rows, cols = _IN_CELL
        self.layer_rgb[i][_CELL >= 0] = self.sprite_rgb[i, ALIEN][rows, cols]
        self.layer_art[i][_CELL >= 0] = self.sprite_mask[i, ALIEN][rows, cols]
        self._new_wave(np.array([i]))

    def _new_wave(self, envs: np.ndarray) -> None:
        self.formation[envs] = (24.0, 24.0)
        self.formation_vx[envs] = self.alien_speed[envs] * (1 + 0.25 * self.wave[envs])
        self.alien_alive[envs] = True
        self._update_layer(envs)

    def _update_layer(self, envs: np.ndarray) -> None:
        """Mask the formation layer of `envs` down to their living aliens."""
        alive = np.concatenate([self.alien_alive[envs], np.zeros((len(envs), 1), dtype=bool)], 1)
        self.layer_mask[envs] = self.layer_art[envs] & alive[:, _CELL]  # _CELL == -1 picks the False column

    def _alien_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, A) alien top-left x and y from the formation origin."""
        r, c = np.divmod(np.arange(NUM_ALIENS), FORMATION[1])
        return self.formation[:, :1] + SPACING * c, self.formation[:, 1:] + SPACING * r

    def _advance(self, b: Buttons):
        n = np.arange(self.num_envs)
        diagonal = np.where((b.dx != 0) & (b.dy != 0), np.sqrt(0.5), 1.0)
        self.vel[:, 0], self.vel[:, 1] = b.dx * self.speed * diagonal, b.dy * self.speed * diagonal
        self.pos[:, 0] = np.clip(self.pos[:, 0] + self.vel[:, 0], 0, FRAME_SIZE - SHIP_BOX)
        self.pos[:, 1] = np.clip(self.pos[:, 1] + self.vel[:, 1], SHIP_TOP, FRAME_SIZE - SHIP_BOX - 2)

        # the player's shots: spawn into a free slot, fly up, vanish off screen
        self.bullets[..., 1] -= 6
        self.bullet_alive &= self.bullets[..., 1] > -SHOT_H
        free = np.argmin(self.bullet_alive, axis=1)
        shoot = b.fire & (self.cooldown == 0) & ~self.bullet_alive[n, free]
        self.bullets[n[shoot], free[shoot]] = np.stack([self.pos[shoot, 0] + 5, self.pos[shoot, 1] - 6], 1)
        self.bullet_alive[n[shoot], free[shoot]] = True
        self.cooldown = np.where(shoot, COOLDOWN, np.maximum(self.cooldown - 1, 0))

        # the formation sweeps sideways and steps down at the edges
        self.formation[:, 0] += self.formation_vx
        ax, ay = self._alien_xy()
        left = np.where(self.alien_alive, ax, np.inf).min(1)
        right = np.where(self.alien_alive, ax + ALIEN_BOX, -np.inf).max(1)
        bounce = (left < 4) | (right > FRAME_SIZE - 4)
        self.formation_vx = np.where(bounce, -self.formation_vx, self.formation_vx)
        self.formation[:, 1] += np.where(bounce, 8.0, 0.0)
        ax, ay = self._alien_xy()

        hits = (
            self.bullet_alive[:, :, None]
            & self.alien_alive[:, None, :]
            & overlap(
                self.bullets[..., 0, None],
                self.bullets[..., 1, None],
                SHOT_W,
                SHOT_H,
                ax[:, None, :],
                ay[:, None, :],
                ALIEN_BOX,
                ALIEN_BOX,
            )
        )  # (N, B, A)
        self.alien_alive &= ~hits.any(1)
        self._update_layer(np.flatnonzero(hits.any((1, 2))))
        self.bullet_alive &= ~hits.any(2)
        self.score += 10 * hits.any(1).sum(1)

        # alien shots: a hashed coin flip per living alien, into a free slot
        self.enemy_bullets[..., 1] += 3
        self.enemy_bullet_alive &= self.enemy_bullets[..., 1] < FRAME_SIZE
        roll = hashed_uniform(self.seeds, self.t, salt=2, k=NUM_ALIENS)
        shooter = np.argmin(np.where(self.alien_alive, roll, np.inf), axis=1)
        slot = np.argmin(self.enemy_bullet_alive, axis=1)
        fires = (
            self.alien_alive[n, shooter]
            & (roll[n, shooter] < self.fire_rate * self.alien_alive.sum(1) / NUM_ALIENS * 4)
            & ~self.enemy_bullet_alive[n, slot]
        )
        self.enemy_bullets[n[fires], slot[fires]] = np.stack([ax[n, shooter] + 5, ay[n, shooter] + ALIEN_BOX], 1)[fires]
        self.enemy_bullet_alive[n[fires], slot[fires]] = True

        shot = self.enemy_bullet_alive & overlap(
            self.enemy_bullets[..., 0],
            self.enemy_bullets[..., 1],
            SHOT_W,
            SHOT_H,
            self.pos[:, :1],
            self.pos[:, 1:],
            SHIP_BOX,
            SHIP_BOX,
        )
        self.enemy_bullet_alive &= ~shot
        landed = np.where(self.alien_alive, ay + ALIEN_BOX, 0).max(1) >= SHIP_TOP
        hit = (shot.any(1) | landed) & (self.invulnerable == 0)
        self.lives -= hit
        self.invulnerable = np.where(hit, INVULNERABLE, np.maximum(self.invulnerable - 1, 0))
        cleared = ~self.alien_alive.any(1)
        self.wave += cleared
        self.score += 50 * cleared
        self._new_wave(np.flatnonzero(cleared | landed))
        self.done |= self.lives <= 0

    def _follow_camera(self):
        span = ROWS * TILE - FRAME_SIZE
        self.camera[:, 1] = span - (np.floor(self.t * self.scroll).astype(np.int64) % span)

    def _draw(self, frames):
        origin = np.floor(self.formation).astype(np.int64) - 2
        blit_layers(frames, self.layer_rgb, self.layer_mask, origin[:, 0], origin[:, 1])
        draws = []
        for alive, shots, sprite in (
            (self.bullet_alive, self.bullets, BULLET),
            (self.enemy_bullet_alive, self.enemy_bullets, ENEMY_BULLET),
        ):
            env, slot = np.nonzero(alive)
            draws.append((env, np.full(len(env), sprite), shots[env, slot, 0] - 6, shots[env, slot, 1] - 2))
        shown = np.flatnonzero((self.invulnerable // 3) % 2 == 0)
        draws.append((shown, np.full(len(shown), SHIP), self.pos[shown, 0] - 1, self.pos[shown, 1] - 1))
        env, k = np.nonzero(np.arange(LIVES)[None, :] < self.lives[:, None])
        draws.append((env, np.full(len(env), LIFE), FRAME_SIZE - 18 - 14 * k, np.full(len(env), 4)))
        env, sprite, x, y = (np.concatenate(parts) for parts in zip(*draws))
        # screen coordinates: the camera only scrolls the starfield
        blit(
            frames,
            self.sprite_rgb,
            self.sprite_mask,
            env.astype(np.int64),
            sprite.astype(np.int64),
            np.floor(x).astype(np.int64),
            np.floor(y).astype(np.int64),
        )
        draw_numbers(frames, self.score, 4, 4, digits=5)

    def state(self):
        ax, ay = self._alien_xy()
        return {
            "player_pos": self.pos.copy(),
            "player_vel": self.vel.copy(),
            "lives": self.lives.copy(),
            "wave": self.wave.copy(),
            "aliens": np.stack([ax, ay, self.alien_alive], -1),
            "bullets": np.concatenate([self.bullets, self.bullet_alive[..., None]], -1),
            "enemy_bullets": np.concatenate([self.enemy_bullets, self.enemy_bullet_alive[..., None]], -1),
            "score": self.score.copy(),
            "time": self.t.copy(),
        }

    def region(self):
        return self.wave * 8 + np.floor(self.pos[:, 0]).astype(np.int64) // 32
