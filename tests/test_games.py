"""Our games: determinism, seeded variety, the physics rules on ground-truth state, bad input."""

import numpy as np
import pytest

from core.games import GAMES, first_frame, make_game, maze, platformer, shooter, unflatten_state
from core.games.art import TILE, TilesetError
from core.games.base import GameConfig

ASSETS = __import__("pathlib").Path(__file__).parents[1] / "core" / "games" / "assets"


def play(name, seeds, actions, **options):
    game = make_game(name, num_envs=len(seeds), **options)
    frames = [game.reset(seeds)]
    for step in actions:
        out, done = game.step(step)
        frames.append(out)
        if done.any():
            break
    return np.stack(frames), game


@pytest.mark.parametrize("name", list(GAMES))
def test_same_seed_and_actions_give_same_frames_in_any_slot(name):
    actions = np.random.default_rng(1).integers(0, 18, (60, 2))
    first, _ = play(name, [7, 8], actions)
    swapped, _ = play(name, [8, 7], actions[:, ::-1])
    assert first.shape[2:] == (256, 256, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first[:, 0], swapped[:, 1])
    np.testing.assert_array_equal(first[:, 1], swapped[:, 0])


@pytest.mark.parametrize("name", list(GAMES))
def test_first_frame_is_a_seeded_level(name):
    a, b = first_frame(name, 3), first_frame(name, 4)
    assert a.shape == (256, 256, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, first_frame(name, 3))
    assert (a != b).any(-1).mean() > 0.05  # another level: layout and palette differ


def test_platformer_gravity_and_ground_on_state():
    game = make_game("platformer", num_envs=1, render=False)
    game.reset([5])
    for _ in range(5):  # settle on the start platform
        game.step(np.array([0]))
    assert game.on_ground[0] and game.vel[0, 1] == 0
    y0 = game.pos[0, 1]
    game.step(np.array([2]))  # UP jumps
    velocities = [game.vel[0, 1]]
    while not game.on_ground[0]:
        game.step(np.array([0]))
        velocities.append(game.vel[0, 1])
    rises = np.diff(velocities[:-1])  # airborne frames: vy grows by exactly gravity (up to the fall cap)
    np.testing.assert_allclose(rises[rises > 0], game.gravity[0])
    assert velocities[0] < 0 and game.pos[0, 1] == y0  # jumped up, landed back on the same ground


@pytest.mark.parametrize(
    "name, solid_tiles, box",
    [
        ("platformer", (platformer.GROUND, platformer.BRICK), (platformer.PLAYER_W, platformer.PLAYER_H)),
        ("maze", (maze.WALL,), (maze.BOX, maze.BOX)),
    ],
)
def test_player_never_overlaps_walls(name, solid_tiles, box):
    game = make_game(name, num_envs=8, render=False)
    game.reset(np.arange(8))
    rng = np.random.default_rng(0)
    for _ in range(400):
        _, done = game.step(rng.integers(0, 18, 8))
        x0, y0 = np.floor(game.pos).astype(int).T
        x1, y1 = np.ceil(game.pos[:, 0] + box[0]).astype(int) - 1, np.ceil(game.pos[:, 1] + box[1]).astype(int) - 1
        for i in range(8):
            rows = slice(max(y0[i], 0) // TILE, min(y1[i], 255 if name == "platformer" else 511) // TILE + 1)
            cols = slice(x0[i] // TILE, x1[i] // TILE + 1)
            assert not np.isin(game.tilemap[i, rows, cols], solid_tiles).any(), f"env {i} inside a wall"
        if done.any():
            ids = np.flatnonzero(done)
            game.reset(ids + 100, ids)


def test_maze_door_blocks_until_the_key():
    game = make_game("maze", num_envs=1, render=False)
    game.reset([2])
    door = np.argwhere(game.tilemap[0] == maze.DOOR)[0]
    solid = (game.tilemap == maze.WALL) | ((game.tilemap == maze.DOOR) & ~game.has_key[:, None, None])
    assert solid[0, door[0], door[1]]
    game.has_key[0] = True
    solid = (game.tilemap == maze.WALL) | ((game.tilemap == maze.DOOR) & ~game.has_key[:, None, None])
    assert not solid[0, door[0], door[1]]


def test_shooter_fire_shoots_and_score_shows():
    game = make_game("shooter", num_envs=1)
    game.reset([1])
    game.step(np.array([1]))  # FIRE
    assert game.bullet_alive[0].sum() == 1 and game.state()["bullets"][0, :, 2].sum() == 1
    before = game.render()[0, :16, :48].copy()
    game.score[0] = 120
    assert (game.render()[0, :16, :48] != before).any()


@pytest.mark.parametrize("name", list(GAMES))
def test_state_vector_unflattens_to_state(name):
    game = make_game(name, num_envs=2, render=False)
    game.reset([0, 1])
    game.step(np.array([3, 4]))
    restored = unflatten_state(game.state_vector(), game.state_layout())
    for key, value in game.state().items():
        np.testing.assert_allclose(restored[key], value.astype(np.float32))


@pytest.mark.parametrize("name", list(GAMES))
def test_shipped_tileset_draws_every_game(name):
    frames, _ = play(name, [0], np.zeros((3, 1), dtype=int), tileset=str(ASSETS / "pocket_tiles.json"))
    procedural, _ = play(name, [0], np.zeros((3, 1), dtype=int))
    assert (frames != procedural).any()


def test_tileset_missing_names_are_named(tmp_path):
    (tmp_path / "t.json").write_text('{"image": "pocket_tiles.png", "tiles": {"sky": [0, 0]}, "sprites": {}}')
    (tmp_path / "pocket_tiles.png").write_bytes((ASSETS / "pocket_tiles.png").read_bytes())
    with pytest.raises(TilesetError, match="lacks ground"):
        make_game("platformer", tileset=str(tmp_path / "t.json"))


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="valid games: platformer, maze, shooter"):
        make_game("tetris")
    with pytest.raises(ValueError, match="num_envs must be positive"):
        GameConfig(num_envs=0)
    game = make_game("maze", num_envs=2)
    game.reset([0, 1])
    with pytest.raises(ValueError, match="0..17"):
        game.step(np.array([0, 18]))
    with pytest.raises(ValueError, match="2 integer action ids"):
        game.step(np.array([0]))
    assert shooter.Shooter.name in GAMES
