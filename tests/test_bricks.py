"""Bricks, the held-out game: the paddle's step shows in frame and state, the ball bounces off walls, paddle
and bricks, a struck brick disappears and scores, levels vary by seed, and no nano training run lists it."""

from pathlib import Path

import numpy as np
import pytest

from core.actions import ACTION_IDS
from core.evaluation.effects import visible_actions
from core.games import HELD_OUT, bricks, make_game
from core.games.art import TILE

NOOP, FIRE, LEFT, RIGHT = (ACTION_IDS[name] for name in ("NOOP", "FIRE", "LEFT", "RIGHT"))
CONFIGS = Path(__file__).parents[1] / "configs"


def new_game(seed=3, render=True):
    game = make_game("bricks", num_envs=1, render=render)
    frames = game.reset([seed])
    return game, (frames[0] if render else None)


def step(game, action):
    frames, done = game.step(np.array([action]))
    return None if frames is None else frames[0]


def paddle_columns(game, frame):
    """Pixel columns where the paddle's body row differs from the level image (the ball is never that low)."""
    row = bricks.PADDLE_Y + 3
    return np.flatnonzero((frame[row] != game.level[0, row]).any(-1))


def fly(game, x, y, vx, vy):
    """Put the ball in flight at (x, y) with velocity (vx, vy)."""
    game.attached[0] = False
    game.ball[0] = (x, y)
    game.ball_vel[0] = (vx, vy)


def test_right_moves_the_paddle_a_visible_step_in_frame_and_state():
    game, frame = new_game()
    x0, speed = game.pos[0, 0], game.paddle_speed[0]
    assert speed >= 4  # a step an inverse-dynamics model can see, even pooled to 64x64
    assert paddle_columns(game, frame)[0] == np.floor(x0)
    frame = step(game, RIGHT)
    assert game.pos[0, 0] == pytest.approx(x0 + speed) and game.state()["player_vel"][0, 0] == pytest.approx(speed)
    columns = paddle_columns(game, frame)
    assert columns[0] == np.floor(x0 + speed) and len(columns) == bricks.PADDLE_W
    # the resting ball rides along
    assert game.ball[0, 0] == pytest.approx(x0 + speed + (bricks.PADDLE_W - bricks.BALL_BOX) / 2)


def test_left_at_the_wall_and_fire_in_flight_show_nothing():
    game, _ = new_game(render=False)
    actions = [LEFT] * 60 + [FIRE] + [FIRE] * 5 + [RIGHT]
    states = [game.state_vector()[0]]
    for action in actions:
        step(game, action)
        states.append(game.state_vector()[0])
    assert game.pos[0, 0] == bricks.FIELD_LEFT + game.paddle_speed[0]
    labels = visible_actions("bricks", np.array(actions), np.stack(states), game.state_layout())
    assert (labels[:15] == LEFT).all() and (labels[30:60] == NOOP).all()  # at the wall within 25 frames
    assert labels[60] == FIRE and (labels[61:66] == NOOP).all() and labels[66] == RIGHT


def test_fire_launches_the_ball_at_the_held_angle():
    game, _ = new_game(render=False)
    step(game, NOOP)
    assert game.attached[0] and (game.ball_vel[0] == 0).all()
    step(game, ACTION_IDS["RIGHTFIRE"])
    vx, vy = game.ball_vel[0]
    assert not game.attached[0] and vy < 0 and np.degrees(np.arctan2(vx, -vy)) == pytest.approx(30)
    assert np.hypot(vx, vy) == pytest.approx(game.ball_speed[0])


def test_ball_bounces_off_walls_and_the_paddle():
    game, _ = new_game(render=False)
    fly(game, bricks.FIELD_LEFT + 2, 180, -3.0, -1.0)
    step(game, NOOP)
    assert game.ball[0, 0] == bricks.FIELD_LEFT and game.ball_vel[0, 0] == 3.0 and game.contacts[0, 0]
    # falling onto the paddle's right half: back up, angled right, at the same speed
    centre = game.pos[0, 0] + bricks.PADDLE_W / 2
    speed = game.ball_speed[0]
    fly(game, centre + 4 - bricks.BALL_BOX / 2, bricks.PADDLE_Y - bricks.BALL_BOX - 1, 0.0, speed)
    step(game, NOOP)
    vx, vy = game.ball_vel[0]
    assert vy < 0 and vx > 0 and np.hypot(vx, vy) == pytest.approx(speed)
    assert game.ball[0, 1] == bricks.PADDLE_Y - bricks.BALL_BOX


def test_a_struck_brick_disappears_and_scores():
    game, _ = new_game()
    rows, cols = np.nonzero(game.tilemap[0] >= bricks.BLOCK_LOW)
    r, c = max(zip(rows, cols))  # a brick of the lowest row: nothing below it
    kind, left = game.tilemap[0, r, c], game.bricks_left[0]
    fly(game, c * TILE + 3, (r + 1) * TILE + 2, 0.0, -3.0)
    frame = step(game, NOOP)
    assert game.contacts[0, 2] and game.ball_vel[0, 1] == 3.0  # bounced back down
    assert game.tilemap[0, r, c] == bricks.SKY and game.bricks_left[0] == left - 1
    assert game.score[0] == bricks.POINTS[kind] > 0
    cell = frame[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
    np.testing.assert_array_equal(cell, game.tile_rgb[0, bricks.SKY])


def test_the_ball_never_enters_a_wall_or_a_brick():
    game = make_game("bricks", num_envs=8, render=False)
    game.reset(np.arange(8))
    rng = np.random.default_rng(0)
    for _ in range(600):
        _, done = game.step(rng.integers(0, 18, 8))
        x0, y0 = np.floor(game.ball).astype(int).T
        x1, y1 = (np.ceil(game.ball + bricks.BALL_BOX).astype(int) - 1).T
        for i in np.flatnonzero(y0 < 256):
            cells = game.tilemap[i, y0[i] // TILE : min(y1[i], 255) // TILE + 1, x0[i] // TILE : x1[i] // TILE + 1]
            assert (cells == bricks.SKY).all(), f"env {i}: ball at {game.ball[i]} overlaps {cells}"
        if done.any():
            ids = np.flatnonzero(done)
            game.reset(ids + 100, ids)


def test_a_lost_ball_costs_a_life_and_the_last_ends_the_game():
    game, _ = new_game(render=False)
    for lives in (2, 1, 0):
        fly(game, 100, 255, 0.0, 3.0)
        _, done = game.step(np.array([NOOP]))
        assert game.lives[0] == lives and game.attached[0] and done[0] == (lives == 0)


def test_levels_vary_by_seed_and_replay_exactly():
    game = make_game("bricks", num_envs=8, render=False)
    game.reset(np.arange(8))
    layouts = {game.tilemap[i].tobytes() for i in range(8)}
    assert len(layouts) == 8 and len(set(game.paddle_speed)) == 8
    assert (game.bricks_left >= 12).all()
    actions = np.random.default_rng(0).integers(0, 18, (150, 8))  # shorter than three lost balls
    runs = []
    for _ in range(2):
        game.reset(np.arange(8))
        runs.append(np.stack([(game.step(a), game.state_vector())[1] for a in actions]))
    np.testing.assert_array_equal(*runs)


def test_nano_training_configs_never_list_a_held_out_game():
    files = [*(CONFIGS / "nano").iterdir(), *(CONFIGS / "nano-v2").glob("*.yaml"), *(CONFIGS / "nano-v2").glob("*.sh")]
    assert len(files) > 10 and "bricks" in HELD_OUT
    for path in files:
        text = path.read_text().lower()
        for game in HELD_OUT:
            assert game not in text, f"{path} names held-out game {game!r}"
