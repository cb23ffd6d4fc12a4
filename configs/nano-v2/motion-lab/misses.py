"""Where a motion net goes wrong on held-out pairs of real frames, per game (16 validation clips each, 64 pairs):
squares that stay but are moved (per frame, and the share of them within 2 squares of one that moves), squares that
move but get a wrong move (per frame; whether the key had just changed), and how far each wrong move is from the
nearest right one (1 px: a sprite's sub-pixel step; "none fits": a square no move makes, which play cannot draw).
Moves are chosen as play chooses them (the model's dynamics.motion settings; STAY_BIAS overrides stay_bias).
    python configs/nano-v2/motion-lab/misses.py MODEL [STAY_BIAS]
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F

from core.train.config import load_run_config
from core.train.data import index_shards, validation_batches
from core.train.frames import FramesStage
from core.world_model import WorldModel

DISTANCES = (("1 px", 1.01), ("1.4 px", 1.5), ("2 px", 2.3), ("3-4 px", 4.01), ("5-8 px", 8.5), ("none fits", 99))


def main():
    torch.set_num_threads(2)
    config = load_run_config("configs/nano-v2/motion.yaml", [], stage="frames")
    model = WorldModel.from_pretrained(sys.argv[1])
    if len(sys.argv) > 2:
        model.dynamics.motion.config.stay_bias = float(sys.argv[2])
    objective = FramesStage(config, model).objective
    motion = objective.motion
    offsets = motion.offsets.float()
    for game in ("maze", "platformer", "shooter"):
        refs = index_shards([f"shards/v2/{game}-val"], "gameplay", "val")
        count = dict(pairs=0, moving=0, missed=0, false=0, near=0, changed=0, changed_missed=0)
        distances = []
        with torch.no_grad():
            for batch in validation_batches(refs, config.data.clip_len, 16, 8):
                full, small, actions = objective.prepare(batch)
                contexts, recents, before, acceptable = objective.motion_pairs(full, small, actions, 0.0)
                moves = motion.choose(motion.scores(contexts, recents, before), before)
                hit = acceptable.gather(1, moves[:, None])[:, 0]
                moving = ~acceptable[:, motion.stay]
                near = F.max_pool2d(moving[:, None].float(), 5, 1, 2)[:, 0] > 0
                changed = (recents[:, 0] != recents[:, 1])[:, None, None] & moving
                count["pairs"] += len(moves)
                count["moving"] += moving.sum().item()
                count["missed"] += (moving & ~hit).sum().item()
                count["false"] += (~moving & ~hit).sum().item()
                count["near"] += (~moving & ~hit & near).sum().item()
                count["changed"] += changed.sum().item()
                count["changed_missed"] += (changed & ~hit).sum().item()
                missed = moving & ~hit
                chosen = offsets[moves.clamp(max=len(offsets) - 1)][missed]  # (n, 2)
                right = acceptable[:, :-1].permute(0, 2, 3, 1)[missed]  # (n, M): the moves, not "redraw"
                gap = torch.cdist(chosen, offsets).masked_fill(~right, 99.0).min(1).values
                distances += gap.tolist()
        n, d = count["pairs"], np.array(distances)
        shares = ", ".join(
            f"{name} {((d > low) & (d <= high)).mean():.2f}"
            for (name, high), low in zip(DISTANCES, (0,) + tuple(h for _, h in DISTANCES[:-1]))
        )
        print(
            f"{game}: staying squares moved {count['false'] / n:.1f} per frame "
            f"({count['near'] / max(count['false'], 1):.0%} within 2 squares of a moving one); "
            f"moving squares {count['moving'] / n:.1f} per frame, {count['missed'] / n:.1f} given a wrong move "
            f"({1 - count['missed'] / max(count['moving'], 1):.1%} right; just after a key change "
            f"{1 - count['changed_missed'] / max(count['changed'], 1):.1%}); wrong moves off by: {shares}"
        )


if __name__ == "__main__":
    main()
