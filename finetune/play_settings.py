"""How a fine-tune plays (its motion net's decode and "stay" prior), chosen on the recording's held-out clips.

A motion net (core/frame_motion.py) picks each square's move; its loss weighs squares that move far above those
that stay, so a net fine-tuned on a new game moves squares that should stay, and in free play a moved wall or
ball smears within a few frames (bricks, README "Bring your own game"). Play can add `stay_bias` nats to "stay"
before it picks, and can pick by outcome (`decode` "outcome": keep or change a square by the probability of
every move that makes it) rather than by the likeliest single move, or move whole objects (`decode` "objects":
the previous frame's colour segments, core/frame_objects.py). Which a fine-tune needs depends on the game
and on the adapter, so `finetune` tries a few of each: each rolls the fine-tune out freely from held-out clips
under their own keys, and the settings whose dreams stay closest to the real play (mean PSNR over the rollout)
ship with the adapter (finetune/lora.py, play.json) and are applied whenever the adapter is loaded.
"""

from __future__ import annotations

import numpy as np
import torch

from core.evaluation.image_quality import psnr
from core.evaluation.rollouts import rollout
from core.train.data import SampleRef, validation_batches
from core.world_model import WorldModel
from finetune.lora import motion_of

# (decode, stay_bias nats): "outcome" needs fewer nats than "sprite" (it weighs the moves that keep a square
# together), "objects" few (a segment moves only where the pixels it changes are likelier changed). Each candidate
# costs a rollout of every clip (~25 s here, 2 cores). Eleven ranked by 64-frame PSNR on a bricks adapter
# (scratch horizons.py, 2026-12-03): these five led, with "objects" at 3 nats 2nd (left out: it scored between
# objects 0 and 1); "sprite" at 0, 4 and 13 nats and "outcome" at 0 and 2 came 7th to 11th
CANDIDATES = (
    ("sprite", 7.0),
    ("sprite", 10.0),
    ("outcome", 4.0),
    ("objects", 0.0),
    ("objects", 1.0),
)
# frames each clip rolls out: over 16 frames a paddle that barely moves scores best, and the chosen "sprite 7" read
# 50.2% of a bricks adapter's keys over 30-s windows; over 64 frames a sprite that tears or is lost has cost its
# PSNR, and "objects 1" comes first (61.3% of the keys on the same windows; 5th of 11 by 16-frame PSNR)
ROLLOUT_FRAMES = 64
CLIPS = 16
# real frames each clip's rollout starts after (rollout's warmup): the net then knows what moves and how fast, as
# in evaluate's windows; from a first frame alone a ball in flight reads as one resting on the paddle, and a
# setting that keeps it glued there scored best (bricks, README "Bring your own game")
WARMUP_FRAMES = 2


@torch.inference_mode()
def rollout_psnr(model: WorldModel, frames: np.ndarray, actions: np.ndarray, warmup: int = 0) -> float:
    """Mean PSNR of the model's free rollouts against the real clips: frames uint8 (B, T+1, H, W, 3), actions
    (B, T+1) with actions[:, t] leading from frame t to t+1 (the last is unused). The first `warmup` frames are
    the rollouts' real context, not scored: each rolls out from frame `warmup`."""
    before = (frames[:, :warmup], actions[:, :warmup]) if warmup else None
    stream = rollout(model, frames[:, warmup], actions[:, warmup:-1], warmup=before)
    return float(np.mean([psnr(frames[:, warmup + t + 1], generated).mean() for t, generated in enumerate(stream)]))


def label(decode: str, stay_bias: float) -> str:
    """How a card and finetune.json name one candidate: "sprite 4"."""
    return f"{decode} {stay_bias:g}"


def choose_play_settings(
    model: WorldModel,
    refs: list[SampleRef],
    candidates: tuple[tuple[str, float], ...] = CANDIDATES,
    frames: int = ROLLOUT_FRAMES,
    clips: int = CLIPS,
) -> dict | None:
    """The (decode, stay bias) whose free rollouts of `clips` held-out clips (`frames` frames each) from `refs` are
    closest to the real play: {"decode", "stay_bias", "frames", "clips", "rollout_psnr": {label: mean PSNR}} (as
    a fine-tune's card keeps it), or None for a model without a motion net or when no held-out sample is
    WARMUP_FRAMES + `frames` + 1 frames long. Leaves the model's own settings as they were."""
    motion = motion_of(model)
    if motion is None:
        return None
    batches = validation_batches(refs, WARMUP_FRAMES + frames + 1, clips, clips)
    if not batches:
        return None
    clip_frames, clip_actions = batches[0]["frames"].numpy(), batches[0]["actions"].numpy()
    own = motion.config.decode, motion.config.stay_bias
    scores = {}
    try:
        for decode, bias in candidates:
            motion.config.decode, motion.config.stay_bias = decode, float(bias)
            scores[(decode, float(bias))] = rollout_psnr(model.eval(), clip_frames, clip_actions, WARMUP_FRAMES)
    finally:
        motion.config.decode, motion.config.stay_bias = own
    best = max(scores, key=scores.get)  # ties: the first (the cheaper decode, the smaller prior)
    return {
        "decode": best[0],
        "stay_bias": best[1],
        "frames": frames,
        "clips": len(clip_frames),
        "rollout_psnr": {label(*key): round(score, 4) for key, score in scores.items()},
    }
