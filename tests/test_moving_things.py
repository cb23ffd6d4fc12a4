"""Moving things kept: a dream that loses, freezes or shreds the ball loses it; one that moves it elsewhere keeps it."""

import numpy as np

from core.evaluation.things import KeptTally, kept_count, movers

BACKGROUND, BRICK, BALL, RIM = (20, 20, 30), (200, 60, 60), (240, 240, 250), (90, 80, 110)


def _frame(ball=None, size=6, bricks=True, rim=RIM, fill=BALL):
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[:] = BACKGROUND
    if bricks:
        frame[4:8, 4:60] = BRICK  # static: never a mover
    if ball is not None:
        y, x = ball
        frame[y : y + size, x : x + size] = rim  # a rim and a fill: two segments, one mover
        frame[y + 1 : y + size - 1, x + 1 : x + size - 1] = fill
    return frame


def test_a_moving_ball_is_one_mover_and_a_static_brick_none():
    still = movers(_frame((30, 30)), _frame((30, 30)))
    moved = movers(_frame((30, 30)), _frame((33, 34)))
    assert len(still) == 0
    assert len(moved) == 1 and moved.areas[0] == 36
    assert np.abs(moved.colours[0] - BALL).sum() < 1 or np.abs(moved.colours[0] - RIM).sum() < 1


def test_kept_only_when_the_dream_has_a_mover_of_its_colour_and_size():
    real = movers(_frame((30, 30)), _frame((33, 34)))
    elsewhere = movers(_frame((10, 50)), _frame((13, 47)))  # another path: kept
    gone = movers(_frame((30, 30)), _frame(None))
    frozen = movers(_frame((30, 30)), _frame((30, 30)))
    speck = movers(_frame((30, 30)), _frame((33, 34), size=2))  # torn to a 2x2 speck
    recoloured = movers(_frame((30, 30)), _frame((33, 34), rim=BRICK, fill=BRICK))  # a brick, not the ball
    assert kept_count(real, elsewhere) == 1
    assert [kept_count(real, d) for d in (gone, frozen, speck, recoloured)] == [0, 0, 0, 0]


def test_the_tally_shares_kept_movers_per_episode_and_early():
    tally = KeptTally(2)
    path = [(30 + 2 * t, 30) for t in range(12)]
    for t in range(1, 12):
        real_before, real_after = _frame(path[t - 1]), _frame(path[t])
        tally.add(0, real_before, real_after, real_before, real_after)  # the real play itself
        lost = t > 4  # the ball vanishes after four frames (1 s at 4 FPS)
        tally.add(1, real_before, real_after, _frame(None if lost else path[t - 1]), _frame(None if lost else path[t]))
    summary = tally.summary(["a", "b"], fps=4, first_seconds=(1,))
    assert [e["kept"] for e in summary["per_episode"]] == [1.0, round(4 / 11, 4)]
    assert summary["kept"] == round(15 / 22, 4) and summary["kept_first"] == {"1s": 1.0}
    assert summary["real_movers_per_frame"] == 1.0
    empty = KeptTally(1)
    empty.add(0, _frame(), _frame(), _frame(), _frame())
    assert empty.summary(["a"], fps=4)["kept"] is None
