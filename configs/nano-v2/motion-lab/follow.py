"""Does the dreamed player follow the keys? From held-out level 200039 of each game, RIGHT held 12 frames then LEFT
12, in the real game and in the dream: where the player's colour is (the mean x of its pixels in the band of rows
around the player) and how many of its pixels are left (a torn sprite loses them), every 6 frames.
    python configs/nano-v2/motion-lab/follow.py [MODEL]   # default zoo/nano
"""

import sys

import numpy as np
import torch

from core.actions import ACTION_IDS
from core.games import make_game
from core.games.base import unflatten_state
from core.session import WorldSession
from core.world_model import WorldModel

SEED, HOLD = 200039, 12


def player_colour(game: str, frame: np.ndarray) -> tuple[np.ndarray, int]:
    """(the commonest colour in the player's box that is not the background, the box's top row on screen)."""
    env = make_game(game, num_envs=1)
    env.reset([SEED])
    fields = unflatten_state(env.state_vector()[None].astype(float), env.state_layout())
    x, y = fields["player_pos"][0, 0]
    if "camera" in fields:
        x -= float(np.ravel(fields["camera"])[0])
    x, y = int(x), int(y)
    box = frame[max(0, y) : y + 14, max(0, x) : x + 14].reshape(-1, 3)
    background = np.median(frame.reshape(-1, 3), 0)
    colours, counts = np.unique(box, axis=0, return_counts=True)
    return next(c for c in colours[np.argsort(-counts)] if np.abs(c - background).sum() > 60), y


def where(frame: np.ndarray, colour: np.ndarray, top: int) -> str:
    """The mean x and the count of the player-coloured pixels in the rows around the player's."""
    mask = np.abs(frame.astype(int) - colour).sum(-1) < 30
    mask[: max(0, top - 16)] = False
    mask[top + 30 :] = False
    xs = np.nonzero(mask)[1]
    return f"x {xs.mean():5.1f}, {mask.sum():3d} px" if len(xs) else "gone"


def main():
    torch.set_num_threads(2)
    model = WorldModel.from_pretrained(sys.argv[1] if len(sys.argv) > 1 else "zoo/nano")
    keys = ["RIGHT"] * HOLD + ["LEFT"] * HOLD
    for game in ("maze", "platformer", "shooter"):
        env = make_game(game, num_envs=1)
        real = [env.reset([SEED])[0]]
        session = WorldSession(model)
        dream = [session.reset(seed=SEED, game=game)]
        for key in keys:
            real.append(env.step(np.array([ACTION_IDS[key]]))[0][0])
            dream.append(session.step(key))
        colour, top = player_colour(game, real[0])
        print(game)
        for t in range(0, 2 * HOLD + 1, 6):
            held = "start" if t == 0 else keys[t - 1]
            seen = [where(frames[t], colour, top) for frames in (real, dream)]
            print(f"  frame {t:2d} ({held:5s}): real {seen[0]}   dream {seen[1]}")


if __name__ == "__main__":
    main()
