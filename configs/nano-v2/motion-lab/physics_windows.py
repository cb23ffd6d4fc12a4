"""Physics of free rollouts on every STEPS-frame window of the platformer's held-out play (eval-data.sh), not only
the three episodes `evaluate --episodes 3` rolls out: one rollout's score swings with chaos (a pixel off early, a
different jump later), and three of them were a lottery (the play that read 0.75 on those three read 0.609 on
these windows, a window 0.15-0.99). Prints each window's score and violations and the pooled score; writes the
same as JSON.
    python configs/nano-v2/motion-lab/physics_windows.py MODEL OUT.json [STEPS]  # 14 windows of 200: ~3 min
"""

import json
import sys
import time

import numpy as np
import torch

from core import zoo
from core.evaluation.episodes import load_episodes
from core.evaluation.physics import physics_score, pooled
from core.evaluation.rollouts import rollout

DATA = "shards/v2/platformer-test"


def main():
    model_path, out = sys.argv[1], sys.argv[2]
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    torch.set_num_threads(2)
    model = zoo.load(model_path)
    episodes = [e for e in load_episodes(DATA, "test", max_frames=steps + 1, windows=True) if len(e.frames) > steps]
    start = time.time()
    stream = rollout(model, np.stack([e.frames[0] for e in episodes]), np.stack([e.actions[:steps] for e in episodes]))
    generated = np.stack(list(stream), 1)  # (B, steps, H, W, 3)
    seconds = time.time() - start
    rows = []
    for episode, frames in zip(episodes, generated):
        meta = episode.meta
        result = physics_score(np.concatenate([episode.frames[:1], frames]), meta["seed"], meta.get("tileset"))
        rows.append({"seed": meta["seed"], "start_frame": meta["start_frame"], **result})
    total = pooled(rows)
    print(f"{'level':>7} {'from':>5} {'score':>6}  violations")
    for r in rows:
        print(f"{r['seed']:>7} {r['start_frame']:>5} {r['score']:>6.2f}  {r['violations']}")
    print(
        f"pooled {total['score']:.3f} over {len(rows)} windows of {steps} frames ({seconds:.0f} s of rollout);",
        total["violations"],
    )
    with open(out, "w") as f:
        json.dump(
            {
                "model": model_path,
                "steps": steps,
                "pooled": total["score"],
                "violations": total["violations"],
                "windows": rows,
            },
            f,
            indent=1,
        )


if __name__ == "__main__":
    main()
