"""Physics consistency calibration: real play scores >= 0.99, shuffled and broken play scores low."""

import numpy as np
import pytest
from evaluation_play import play_platformer

from core.evaluation.physics import Level, find_camera, locate, physics_score
from core.games.base import unflatten_state

SEEDS = (3, 11)


@pytest.fixture(scope="module")
def episodes():
    return {seed: play_platformer(seed, 240) for seed in SEEDS}


def test_sprite_and_camera_are_found_exactly_on_real_frames(episodes):
    frames, _, state, layout = episodes[SEEDS[0]]
    fields = unflatten_state(state, layout)
    level = Level.from_seed(SEEDS[0])
    found, x, y = locate(frames, level)
    assert found.all()
    assert np.array_equal(find_camera(frames, level), fields["camera"][:, 0])
    assert np.array_equal(x, np.floor(fields["player_pos"][:, 0]))
    assert np.array_equal(y, np.floor(fields["player_pos"][:, 1]))


def test_real_play_obeys_the_rules(episodes):
    for seed, (frames, *_) in episodes.items():
        result = physics_score(frames, seed)
        assert result["transitions"] == len(frames) - 1
        assert result["score"] >= 0.99, result


def test_shuffled_frames_score_low(episodes):
    frames = episodes[SEEDS[0]][0]
    shuffled = frames[np.random.default_rng(0).permutation(len(frames))]
    assert physics_score(shuffled, SEEDS[0])["score"] < 0.2


@pytest.mark.parametrize("corrupt,rule", [("no_gravity", "gravity"), ("no_solids", "solid")])
def test_broken_physics_scores_low(corrupt, rule):
    frames = play_platformer(SEEDS[1], 150, corrupt=corrupt)[0]
    result = physics_score(frames, SEEDS[1])
    # the broken rule shows up, and far more often than rounding ever causes on real play
    assert result["score"] < 0.85, result
    assert result["violations"][rule] >= 5, result
