"""How a fine-tune plays (its motion net's decode and "stay" prior), chosen on the recording's held-out clips.

A motion net (core/frame_motion.py) picks each square's move; its loss weighs squares that move far above those
that stay, so a net fine-tuned on a new game moves squares that should stay, and in free play a moved wall or
ball smears within a few frames (bricks, README "Bring your own game"). Play can add `stay_bias` nats to "stay"
before it picks, and can pick by outcome (`decode` "outcome": keep or change a square by the probability of
every move that makes it) rather than by the likeliest single move, or move whole objects (`decode` "objects":
the previous frame's colour segments, core/frame_objects.py). Which a fine-tune needs depends on the game
and on the adapter, so `finetune` tries the candidates that have won (CANDIDATES): each rolls the fine-tune out
freely from held-out clips under their own keys, and the settings whose dreams stay closest to the real play (mean
PSNR over the rollout) ship with the adapter (finetune/lora.py, play.json) and are applied whenever it is loaded.
"""

from __future__ import annotations

import numpy as np
import torch

from core.evaluation.image_quality import psnr
from core.evaluation.rollouts import rollout
from core.train.data import SampleRef, validation_batches
from core.world_model import WorldModel
from finetune.lora import motion_of

# (decode, stay_bias nats). Over 30-s windows of bricks (`evaluate`, README "Bring your own game") no fine-tune
# played better by "sprite" or "outcome" than by "objects": sprite 7 read 47.4% of a 20-minute adapter's keys where
# objects 1 read 88.4% (byog33), 50.2% against 62.5% (byog24); outcome 0 45.5% against 55.1% (byog22). Between
# objects 0 and 1 the better one changes with the adapter (byog28: 64.5 / 70.6%; byog24: 62.5 / 61.3%). Each
# candidate costs a rollout of every clip (~75 s here, 2 cores), so the sweep keeps the two that win
CANDIDATES = (
    ("objects", 0.0),
    ("objects", 1.0),
)
# frames each clip rolls out: what goes wrong in free play shows late. Over 64 frames "sprite 7" scored 0.26 dB
# above "objects 0" on byog33's clips, over 125 0.35 dB below (its last 64 frames: 0.97 dB below), and it read
# the keys half as well over 30 s (scratch runs/s28-sweep.py, 2026-12-03). 125: the held-out samples that ingest
# cuts are 128 frames, less the warm-up and the first frame
ROLLOUT_FRAMES = 125
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
