"""The "stay" prior a fine-tune plays with, chosen on the recording's held-out clips.

A motion net (core/frame_motion.py) picks each square's move; its loss weighs squares that move far above those
that stay, so a net fine-tuned on a new game moves squares that should stay, and in free play a moved wall or
ball smears within a few frames (bricks, README "Bring your own game"). Play adds `stay_bias` nats to "stay"
before it picks. How many nats a fine-tune needs depends on the game and on the adapter, so `finetune` tries a
ladder of them: each rolls the fine-tune out freely from held-out clips under their own keys, and the one whose
dreams stay closest to the real play (mean PSNR over the rollout) ships with the adapter (finetune/lora.py,
play.json) and is applied whenever the adapter is loaded.
"""

from __future__ import annotations

import numpy as np
import torch

from core.evaluation.image_quality import psnr
from core.evaluation.rollouts import rollout
from core.train.data import SampleRef, validation_batches
from core.world_model import WorldModel

# nats; 16 already keeps nearly every square still. Each costs a rollout of every clip (~6 s on 2 cores)
CANDIDATES = (0.0, 4.0, 7.0, 10.0, 13.0, 16.0)
ROLLOUT_FRAMES = 16  # a smear shows within 8-16 frames (on bricks 16 and 32 chose the same prior)
CLIPS = 16


def motion_of(model: WorldModel):
    """The model's motion net (through a LoRA wrapper), or None for a model without one."""
    return getattr(model.dynamics, "motion", None)


@torch.inference_mode()
def rollout_psnr(model: WorldModel, frames: np.ndarray, actions: np.ndarray) -> float:
    """Mean PSNR of the model's free rollouts against the real clips: frames uint8 (B, T+1, H, W, 3), actions
    (B, T+1) with actions[:, t] leading from frame t to t+1 (the last is unused)."""
    scores = [
        psnr(frames[:, t + 1], generated).mean()
        for t, generated in enumerate(rollout(model, frames[:, 0], actions[:, :-1]))
    ]
    return float(np.mean(scores))


def choose_stay_bias(
    model: WorldModel,
    refs: list[SampleRef],
    candidates: tuple[float, ...] = CANDIDATES,
    frames: int = ROLLOUT_FRAMES,
    clips: int = CLIPS,
) -> dict | None:
    """The stay bias (nats) whose free rollouts of `clips` held-out clips (`frames` frames each) from `refs` are
    closest to the real play: {"stay_bias", "frames", "clips", "rollout_psnr": {bias as text: mean PSNR}} (as a
    fine-tune's card keeps it), or None for a model without a motion net or when no held-out sample is `frames`
    + 1 frames long. Leaves the model's own stay bias as it was."""
    motion = motion_of(model)
    if motion is None:
        return None
    batches = validation_batches(refs, frames + 1, clips, clips)
    if not batches:
        return None
    clip_frames, clip_actions = batches[0]["frames"].numpy(), batches[0]["actions"].numpy()
    own = motion.config.stay_bias
    scores = {}
    try:
        for bias in candidates:
            motion.config.stay_bias = float(bias)
            scores[float(bias)] = rollout_psnr(model.eval(), clip_frames, clip_actions)
    finally:
        motion.config.stay_bias = own
    best = max(scores, key=lambda bias: (scores[bias], -bias))  # ties: the smaller bias
    return {
        "stay_bias": best,
        "frames": frames,
        "clips": len(clip_frames),
        "rollout_psnr": {f"{bias:g}": round(score, 4) for bias, score in scores.items()},
    }
