"""Free play as a user plays: 150 frames (5 s) of random keys held 1-8 frames from held-out level 200039 of each
game, the real game above the dream, every 30th frame; one picture per game.
    python configs/nano-v2/motion-lab/free_play.py MODEL OUT_PREFIX  # -> OUT_PREFIX-GAME.png
"""

import sys

import numpy as np
import torch
from PIL import Image

from core.games import make_game
from core.session import WorldSession
from core.world_model import WorldModel

KEYS = [0, 1, 2, 3, 4, 5]  # NOOP FIRE UP RIGHT LEFT DOWN
FRAMES, EVERY, SEED = 150, 30, 200039


def main():
    torch.set_num_threads(2)
    model = WorldModel.from_pretrained(sys.argv[1])
    rng = np.random.default_rng(0)
    for game in ("maze", "platformer", "shooter"):
        keys = []
        while len(keys) < FRAMES:
            keys += [int(rng.choice(KEYS))] * int(rng.integers(1, 9))
        env = make_game(game, num_envs=1)
        real = [env.reset([SEED])[0]]
        session = WorldSession(model)
        dream = [session.reset(seed=SEED, game=game)]
        for key in keys[:FRAMES]:
            real.append(env.step(np.array([key]))[0][0])
            dream.append(session.step(key))
        picks = range(0, FRAMES + 1, EVERY)
        rows = [np.concatenate([frames[i] for i in picks], 1) for frames in (real, dream)]
        Image.fromarray(np.concatenate(rows, 0)).save(f"{sys.argv[2]}-{game}.png")


if __name__ == "__main__":
    main()
