"""Score a model with a motion net on the held-out clips its training validates on (configs/nano-v2/motion.yaml's
data.val, 24 clips spread over the three games' validation levels), as the frames stage logs them: how often each
square's likeliest move is an acceptable one (all squares, those that move), the frame drawn from the real one
before against the real next frame (teacher-forced, beside that real frame repeated), and the clips played on its
own frames for 4 frames (beside the real frame repeated).
    python configs/nano-v2/motion-lab/validate.py MODEL_FOLDER
"""

import sys

import torch

from core.train.config import load_run_config
from core.train.data import index_shards, validation_batches
from core.train.frames import FramesStage
from core.world_model import WorldModel


def main():
    torch.set_num_threads(2)
    config = load_run_config("configs/nano-v2/motion.yaml", [], stage="frames")
    model = WorldModel.from_pretrained(sys.argv[1])
    stage = FramesStage(config, model)
    refs = index_shards(config.data.val, "gameplay", "val")
    totals = {}
    with torch.no_grad():
        for batch in validation_batches(refs, config.data.clip_len, config.data.val_clips, config.train.batch_size):
            full, small, actions = stage.objective.prepare(batch)
            for name, (total, count) in stage.validate_motion(full, small, actions).items():
                kept = totals.setdefault(name, [0.0, 0.0])
                kept[0], kept[1] = kept[0] + total, kept[1] + count
    for name, (total, count) in totals.items():
        print(f"{name}: {total / max(count, 1):.4f}")


if __name__ == "__main__":
    main()
