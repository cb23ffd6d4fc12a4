"""Trained world models scored on the lab's clips like any arm: the shipped nano (the baseline), or
any model folder (`model:PATH`, e.g. a nano v2 run).

They are not retrained here; a row carries what the model's training cost when known. Each sees
the same clips at 256x256: teacher-forced over the whole clip (its state carries the history),
rolled out from the last context frame under the same keys, and scored at 64x64 by
core/control/scores.py.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from core.control.scores import score_clips, shuffled, summarise, to_score_size
from core.frames import to_model


def _as_model_frames(frames: np.ndarray) -> torch.Tensor:
    return to_score_size(to_model(frames).float())  # (T, 3, 64, 64)


def score_nano(config, games, progress: bool = True) -> dict:
    """The shipped nano, whichever version zoo/nano holds (its card's "Training budget" says what it cost)."""
    from core.zoo import load

    return {**score_model(load("nano"), config, games, "nano", progress), "training": "shipped: zoo/nano/README.md"}


@torch.inference_mode()
def score_model(model, config, games, name: str, progress: bool = True) -> dict:
    """The lab's scores of a WorldModel (either family) on each game's held-out clips."""
    from core.control.lab import game_idm, test_clips
    from core.evaluation.rollouts import reconstruct, rollout, teacher_forced

    torch.set_num_threads(config.threads)
    model = model.eval()
    per_game = {}
    for game in tqdm(games, desc=name, disable=not progress):
        clips = test_clips(config, game, context=2, keep_full=True)
        c, h = clips.context, clips.horizon
        forced = {True: [], False: []}
        for i, frames in enumerate(clips.full):
            ids = reconstruct(model, frames)[2]
            for own in (True, False):
                actions = clips.actions[i] if own else shuffled(clips.actions)[i]
                predicted = teacher_forced(model, frames, actions.numpy(), ids)  # frames 1..T-1
                forced[own].append(_as_model_frames(predicted[c - 1 :]))
        rolled = {}
        for own in (True, False):
            actions = (clips.actions if own else shuffled(clips.actions))[:, c - 1 : c - 1 + h].numpy()
            steps = list(rollout(model, clips.full[:, c - 1], actions))
            rolled[own] = torch.stack([_as_model_frames(step) for step in steps], 1)  # (N, H, 3, 64, 64)
        per_game[game] = score_clips(
            clips,
            torch.stack(forced[True]),
            torch.stack(forced[False]),
            rolled[True],
            rolled[False],
            game_idm(config, game, progress),
        )
    return {"minutes": None, "step": None, "frame_views": None, "mean": summarise(per_game), "games": per_game}
