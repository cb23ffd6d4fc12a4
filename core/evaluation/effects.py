"""Which buttons of a pressed action had a visible effect: the label an inverse-dynamics model can learn.

Many presses change nothing on screen: jumping in mid-air, running into a wall, FIRE in the
platformer while standing still (it only makes running faster), FIRE in the shooter while the
gun cools down (the "no ammo" case), LEFT with the paddle at the wall or FIRE with the ball in
flight in bricks. Two frames cannot tell such a press from NOOP, so an IDM
scored against the commanded action would be blamed for the game's rules. We read the
recorded ground-truth state before and after each step and keep only the buttons whose
effect shows; the IDM is trained on, and every accuracy is counted against, this visible
action. The share of presses that were relabelled is reported next to each accuracy.

Rules (state[t] is the state at frame t, state[t+1] after the action):
- platformer: LEFT/RIGHT show when the player moved >= 0.5 px sideways; FIRE (sprint) when the
  drawn step (whole pixels) is longer than any level's walk can draw: a sprint drawn as a 3 px step
  looks like the fastest levels' walk, and two frames cannot tell which it was; UP (jump) when the
  player stood on ground; DOWN (fast fall) never: it adds one gravity step (~0.5 px/frame) of speed, under a pixel.
- maze: a direction shows when the player moved along its axis; FIRE always (the sword is drawn).
- shooter: a direction shows when the ship moved along its axis; FIRE when a new bullet appeared.
- bricks: LEFT/RIGHT show when the paddle moved sideways; UP/DOWN never (the paddle only slides);
  FIRE when it launched the ball off the paddle.
- other games (no rule), and play recorded without ground-truth state (ingested video): the
  commanded action counts as visible.
"""

from __future__ import annotations

import math

import numpy as np

from core.games.base import BUTTONS, unflatten_state
from core.games.platformer import RUN_SPEEDS

_UP, _DOWN, _LEFT, _RIGHT, _FIRE = range(5)  # columns of core.games.base.BUTTONS
MOVE_EPS = 0.5  # px: a smaller move rounds to the same pixel, so it cannot be seen
WALK_STEP = math.ceil(RUN_SPEEDS[1])  # px: the longest step a platformer walk draws (sprites sit on whole pixels)
RULES = ("platformer", "maze", "shooter", "bricks")
_BUTTON_IDS = {sum(int(b) << i for i, b in enumerate(row)): a for a, row in enumerate(BUTTONS.tolist())}


def has_rule(game: str) -> bool:
    return game in RULES


def label_kind(game: str, layout: dict) -> str:
    """What visible_actions gives for play of `game` whose state has this layout, in words for a report."""
    if not has_rule(game):
        return "commanded action (no visibility rule for this game)"
    if not layout:
        return (
            "keys pressed (a recording without game state, e.g. an ingested video: presses that showed nothing "
            "count as misses for real and generated frames alike)"
        )
    return (
        "visible action: presses with no visible effect in that game state (e.g. UP in mid-air, FIRE while "
        "standing) count as the buttons that did show, from the recorded state (core/evaluation/effects.py)"
    )


def visible_actions(game: str, actions: np.ndarray, state: np.ndarray, layout: dict) -> np.ndarray:
    """actions (T,) commanded at frames 0..T-1, state (T+1, D) for frames 0..T (flat, with its
    layout from the shard meta) -> (T,) ids of the visible part of each action."""
    actions = np.asarray(actions, dtype=np.int64)
    if not has_rule(game) or not layout:  # no state: a user's video named after one of our games
        return actions.copy()
    assert len(state) == len(actions) + 1, (len(state), len(actions))
    fields = unflatten_state(np.asarray(state, dtype=np.float64), layout)
    pressed = BUTTONS[actions].copy()  # (T, 5) bool
    pos = fields["player_pos"]  # (T+1, 2)
    move = pos[1:] - pos[:-1]  # (T, 2)
    moved_x, moved_y = np.abs(move[:, 0]) >= MOVE_EPS, np.abs(move[:, 1]) >= MOVE_EPS
    pressed[:, _LEFT] &= moved_x & (move[:, 0] < 0)
    pressed[:, _RIGHT] &= moved_x & (move[:, 0] > 0)
    if game == "platformer":
        drawn = np.abs(np.floor(pos[1:, 0]) - np.floor(pos[:-1, 0]))
        pressed[:, _FIRE] &= (pressed[:, _LEFT] | pressed[:, _RIGHT]) & (drawn > WALK_STEP)
        pressed[:, _UP] &= fields["on_ground"][:-1].reshape(-1) > 0.5
        pressed[:, _DOWN] = False
    else:
        pressed[:, _UP] &= moved_y & (move[:, 1] < 0)
        pressed[:, _DOWN] &= moved_y & (move[:, 1] > 0)
        if game == "shooter":
            alive = fields["bullets"][..., -1] > 0.5  # (T+1, slots)
            pressed[:, _FIRE] &= (alive[1:] & ~alive[:-1]).any(1)
        if game == "bricks":
            resting = fields["ball_attached"].reshape(-1) > 0.5  # (T+1,)
            pressed[:, _FIRE] &= resting[:-1] & ~resting[1:]
    codes = (pressed.astype(np.int64) << np.arange(5)).sum(1)
    # every subset of a valid action's buttons is itself one of the 18 actions
    return np.array([_BUTTON_IDS[int(c)] for c in codes], dtype=np.int64)
