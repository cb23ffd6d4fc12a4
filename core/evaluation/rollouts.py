"""Driving a world model over real play: reconstructions, teacher-forced predictions, free rollouts.

Three ways of asking the model for frames, from easiest to hardest:
- reconstruction: real frame -> tokens -> frame (the tokenizer's own decoder, and the frame
  decoder given the real previous frame), which bounds everything after it;
- teacher forcing: the dynamics sees the real tokens of frames 0..t and predicts t+1 (one
  parallel forward, as in training), decoded on the real frame t;
- free rollout: from the real first frame, the model feeds on its own frames under a given
  action sequence, stepping the recurrent state once per frame exactly as a play session
  does (core/session.py), but for a batch of episodes at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import torch

from core.frames import to_model, to_uint8
from core.world_model import WorldModel


def _batches(count: int, size: int):
    return (slice(i, min(i + size, count)) for i in range(0, count, size))


@torch.inference_mode()
def reconstruct(model: WorldModel, frames: np.ndarray, batch: int = 16) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """frames uint8 (T, H, W, 3) -> (the encoding's round trip (T, H, W, 3), frame decoder on the real
    previous frame (T-1, H, W, 3) for frames 1..T-1, what the dynamics reads of each frame: token ids
    (T, S) or small frames (T, 3, r, r))."""
    inputs, round_trip = [], []
    for part in _batches(len(frames), batch):
        part_inputs = model.encode(to_model(frames[part]))  # (b, S) or (b, 3, r, r)
        inputs.append(part_inputs)
        round_trip.append(to_uint8(model.round_trip(part_inputs)))
    inputs = torch.cat(inputs)
    decoded = []
    for part in _batches(len(frames) - 1, batch):
        decoded.append(to_uint8(model.render(inputs[part.start + 1 : part.stop + 1], to_model(frames[part]))))
    empty = np.zeros((0, *frames.shape[1:]), np.uint8)
    return np.concatenate(round_trip), np.concatenate(decoded) if decoded else empty, inputs


@torch.inference_mode()
def teacher_forced(
    model: WorldModel, frames: np.ndarray, actions: np.ndarray, inputs: torch.Tensor, window: int = 32
) -> np.ndarray:
    """Next-frame predictions from real context: frames uint8 (T, H, W, 3), actions (T,), inputs from
    `reconstruct` -> predicted frames 1..T-1 (T-1, H, W, 3).

    The sequence is cut into windows of `window` frames (the training clip length), each
    predicted in one parallel forward pass."""
    out = []
    for part in _batches(len(frames) - 1, window):
        before = to_model(frames[part])  # (w, 3, H, W): what the decoder draws on, and what a motion net moves
        full = {"full": before[None]} if model.config.family == "frames" else {}
        output = model.dynamics(inputs[part][None], torch.as_tensor(actions[part])[None], **full)[0]
        out.append(to_uint8(model.render(model.choose(output), before)))  # output: (w, S, V) or (w, 3, r, r)
    return np.concatenate(out)


@torch.inference_mode()
def rollout(
    model: WorldModel,
    first_frames: np.ndarray,
    actions: np.ndarray,
    *,
    temperature: float = 0.0,
    seed: int = 0,
    warmup: tuple[np.ndarray, np.ndarray] | None = None,
) -> Iterator[np.ndarray]:
    """Free rollouts of a batch: first_frames uint8 (B, H, W, 3), actions int (B, T) ->
    yields the generated frames uint8 (B, H, W, 3) after each of the T actions, in order.

    temperature 0 takes the likeliest token (as WorldSession's default); > 0 samples. `warmup` (frames uint8
    (B, n, H, W, 3), keys (B, n)): the real play before first_frames, each frame stepped through the dynamics
    with the key pressed at it and its prediction replaced by the real next frame, so the rollout starts from a
    context of real frames (what moves, and how fast) instead of first_frames alone, which reads as still."""
    generator = torch.Generator().manual_seed(seed)
    state = model.dynamics.init_state(len(first_frames))
    if warmup is not None and warmup[0].shape[1]:
        state = _warmed_up(model, state, *warmup)
    frame = to_model(first_frames)  # (B, 3, H, W)
    inputs = model.encode(frame)  # (B, S) or (B, 3, r, r)
    actions = torch.as_tensor(np.asarray(actions), dtype=torch.long)
    for t in range(actions.shape[1]):
        full = {"full": frame} if model.config.family == "frames" else {}
        output, state = model.dynamics.step(inputs, actions[:, t], state, **full)
        inputs = model.choose(output, temperature, generator=generator)
        frame = model.render(inputs, frame)
        inputs = model.next_input(inputs, frame)
        yield to_uint8(frame)


def _warmed_up(model: WorldModel, state, frames: np.ndarray, keys: np.ndarray):
    """The dynamics' state after real frames (B, n, H, W, 3) and the keys pressed at them (B, n)."""
    keys = torch.as_tensor(np.asarray(keys), dtype=torch.long)
    for t in range(frames.shape[1]):
        frame = to_model(frames[:, t])
        full = {"full": frame} if model.config.family == "frames" else {}
        _, state = model.dynamics.step(model.encode(frame), keys[:, t], state, **full)
    if getattr(state, "placed", None) is not None:  # a sprite put down on a frame the real one replaced is not there
        state = dataclasses.replace(state, placed=None)
    return state
