"""A motion-lab arm A checkpoint as a WorldModel folder: the interim nano v2 with a motion net (dynamics.motion, the
product's form of the lab's head, core/frame_motion.py) holding the lab's weights; the frames stage then trains
it on with a held-out score (configs/nano-v2/motion.yaml).
    python configs/nano-v2/motion-lab/export.py runs/motion-lab/motion-1635.safetensors runs/nano-motion-lab/model
"""

import dataclasses
import sys

from safetensors.torch import load_file

from core.config import MotionConfig, WorldModelConfig
from core.world_model import WorldModel

BASE = "runs/v2-candidate"  # the interim nano v2 the lab grew on (configs/nano-v2/ship.sh makes it)


def main():
    weights, out = sys.argv[1], sys.argv[2]
    nano = WorldModel.from_pretrained(BASE)
    config = dataclasses.asdict(nano.config)
    config["dynamics"]["motion"] = dataclasses.asdict(MotionConfig())  # the lab's: radius 6, nano's U-Net, head 64
    model = WorldModel(WorldModelConfig(**config))
    model.load_state_dict(nano.state_dict(), strict=False)
    lab = load_file(weights)
    wanted = model.dynamics.motion.state_dict()
    # the lab grew its head on a whole copy of the dynamics: its denoiser and to_rgb are not the motion net's
    motion = {key.removeprefix("dyn."): value for key, value in lab.items() if key.removeprefix("dyn.") in wanted}
    missing = set(wanted) - set(motion)
    if missing:
        raise SystemExit(f"{weights}: not a lab arm A checkpoint (missing {sorted(missing)[:4]})")
    model.dynamics.motion.load_state_dict(motion)
    model.save_pretrained(out)
    print(f"wrote {out}: {model.parameter_counts()}")


if __name__ == "__main__":
    main()
