"""Frame dynamics: from the last few small frames and the keys, the next small frame.

The dynamics of the "frames" model family (nano v2). It works on frames area-pooled to a
small internal resolution (64x64 for nano), not on token ids: a 2D game's motion is a few
pixels, which a continuous frame keeps and a categorical token turns into a jump between
codes. A small U-Net with the keys in every block (core/keyed_unet.py) over the last `context`
frames, stacked as channels, outputs the change to the last frame. `forward` runs a whole clip
(each frame predicted from the real frames before it); `step` runs one frame for play, carrying
a `FrameState` of fixed size; a test holds the two to each other.

Predicting the next frame directly gives the mean of what may come: where the player will be is
a little uncertain, so it blurs, and in play the blur compounds (nano v2's smear). With
`denoise_steps` > 0 the same U-Net is a denoiser instead (as DIAMOND's, after EDM, Karras et
al. 2022): it also sees the next frame under Gaussian noise of a level sigma, given to every
block with the keys, and predicts it clean; play samples it in a few Euler steps from pure
noise, so each frame is one sharp possible frame rather than the mean of them. The denoiser's
extra parts start at zero: grown from a trained direct dynamics, it first predicts as that did.

Drawn anew, a sprite that moved is only as sharp as the upsampler can make it. With a `motion`
net (core/frame_motion.py), play moves the previous full frame's pixels instead, square by
square, and calls the denoiser (and the upsampler) only for squares it must redraw: `step` and
`forward` then return a `FramePrediction` (the moves, and the small frame where one is needed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.actions import NUM_ACTIONS
from core.config import FrameDynamicsConfig
from core.frame_motion import FrameMotion, FramePrediction
from core.frames import changed_mask
from core.keyed_unet import KeyedUNet
from core.sprite_memory import Placement

MOVED_SMALL = 0.02  # a small-frame pixel moved if a channel changed by more ([-1, 1] units; pooling dims edges)
# the denoiser's noise levels ([-1, 1] units), as DIAMOND's: it learns at ln(sigma) ~ N(P_MEAN, P_STD), it samples
# down a Karras schedule from SIGMA_MAX to SIGMA_MIN, then to 0
SIGMA_DATA, SIGMA_MIN, SIGMA_MAX, RHO = 0.5, 0.002, 5.0, 7.0
P_MEAN, P_STD = -0.4, 1.2
SIGMA_FREQUENCIES = 8  # Fourier features of ln(sigma)
CONTEXT_LEVEL_FLOOR = 0.01  # added to a context noise level before its log: clean frames (0) get a finite feature


@dataclass
class FrameState:
    frames: torch.Tensor | None  # (B, C-1, 3, r, r) the frames before the current one; None before the first step
    recent_actions: torch.Tensor  # (B, K) key ids, the newest first; num_actions = "none yet"
    placed: Placement | None = None  # the sprite memory's sprite play follows (FramePrediction.placed)


def sigma_schedule(steps: int) -> list[float]:
    """The noise levels a sample goes down, `steps` of them then 0 (Karras et al. 2022, eq. 5)."""
    if steps == 1:
        return [SIGMA_MAX, 0.0]
    top, bottom = SIGMA_MAX ** (1 / RHO), SIGMA_MIN ** (1 / RHO)
    return [(top + i / (steps - 1) * (bottom - top)) ** RHO for i in range(steps)] + [0.0]


class Denoiser(nn.Module):
    """What a denoising dynamics adds to the U-Net: the noisy next frame into the first features, and the
    noise level into the vector the keys give every block (and, with dynamics.context_level, the level of the
    noise on its context frames). All start at zero (the U-Net as it was)."""

    def __init__(self, width: int, action_dim: int, context_level: bool = False):
        super().__init__()
        self.noisy_in = nn.Conv2d(3, width, 3, padding=1)
        self.sigma_in = nn.Linear(2 * SIGMA_FREQUENCIES, action_dim)
        self.context_level_in = nn.Linear(2 * SIGMA_FREQUENCIES, action_dim) if context_level else None
        for layer in (self.noisy_in, self.sigma_in, self.context_level_in):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        self.register_buffer("frequencies", 2.0 ** torch.arange(SIGMA_FREQUENCIES), persistent=False)

    def level_features(self, level: torch.Tensor) -> torch.Tensor:
        """level (B,) -> (B, 2F): Fourier features of ln(level)/4 (for sigma ~[-1.6, 0.4]: EDM's c_noise)."""
        angle = torch.log(level)[:, None] / 4 * self.frequencies
        return torch.cat([angle.cos(), angle.sin()], dim=1)

    def embed_sigma(self, sigma: torch.Tensor, context_level: torch.Tensor | None = None) -> torch.Tensor:
        """sigma (B,), the context frames' noise level (B,) or None (clean) -> (B, A)."""
        embedded = self.sigma_in(self.level_features(sigma))
        if self.context_level_in is not None:
            level = torch.zeros_like(sigma) if context_level is None else context_level
            embedded = embedded + self.context_level_in(self.level_features(level + CONTEXT_LEVEL_FLOOR))
        return embedded

    def features(self, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """noisy (B, 3, r, r), sigma (B,) -> (B, width, r, r), scaled to unit variance first (EDM's c_in)."""
        return self.noisy_in(noisy / (sigma**2 + SIGMA_DATA**2).sqrt()[:, None, None, None])


class FrameDynamics(KeyedUNet):
    def __init__(self, config: FrameDynamicsConfig):
        super().__init__(
            3 * config.context,
            config.channels,
            config.mid_blocks,
            config.action_mode,
            config.action_context,
            config.action_dim,
        )
        self.config = config
        self.to_rgb = nn.Conv2d(config.channels[0], 3, 3, padding=1)
        nn.init.zeros_(self.to_rgb.weight)  # starts as "nothing changes": the last frame again
        nn.init.zeros_(self.to_rgb.bias)
        c0 = config.channels[0]
        self.denoiser = Denoiser(c0, config.action_dim, config.context_level) if config.denoise_steps else None
        self.motion = FrameMotion(config) if config.motion is not None else None

    def predict(
        self, context: torch.Tensor, recent: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """context (B, C, 3, r, r) oldest first, in [-1, 1]; recent (B, K) keys, the one pressed at the
        last context frame first -> the next frame (B, 3, r, r): for a denoiser a sample of it (its noise
        drawn from `generator`)."""
        if self.denoiser is None:
            return self.denoise(context, recent)
        level = None
        if self.config.play_context_noise:
            noise = torch.randn(context.shape, generator=generator, device=context.device, dtype=context.dtype)
            context = context + self.config.play_context_noise * noise
            level = torch.full((len(context),), self.config.play_context_noise, device=context.device)
        sigmas = sigma_schedule(self.config.denoise_steps)
        last = context[:, -1]
        x = sigmas[0] * torch.randn(last.shape, generator=generator, device=last.device, dtype=last.dtype)
        for sigma, lower in zip(sigmas[:-1], sigmas[1:]):  # Euler steps of the probability-flow ODE
            clean = self.denoise(context, recent, x, torch.full((len(x),), sigma, device=x.device), level)
            x = clean + (lower / sigma) * (x - clean)
        return x

    def denoise(
        self,
        context: torch.Tensor,
        recent: torch.Tensor,
        noisy: torch.Tensor | None = None,
        sigma: torch.Tensor | None = None,
        context_level: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The next frame (B, 3, r, r) from the context and keys, for a denoiser also from the next frame under
        noise: noisy (B, 3, r, r) of level sigma (B,); context_level (B,) the noise level on the context frames
        (read with dynamics.context_level; None: clean)."""
        action = self.embed_actions(recent)  # (B, A)
        x = self.stem(context.flatten(1, 2))  # (B, c0, r, r)
        if self.denoiser is not None:
            action = action + self.denoiser.embed_sigma(sigma, context_level)
            x = x + self.denoiser.features(noisy, sigma)
        return context[:, -1] + self.to_rgb(self.trunk(x, action))

    def forward(self, frames: torch.Tensor, actions: torch.Tensor, full: torch.Tensor | None = None) -> torch.Tensor:
        """frames (B, T, 3, r, r) of a clip, actions (B, T) pressed at each -> (B, T, 3, r, r): output t is the
        prediction of frame t+1 from the real frames up to t (the first frame stands in for those before it); with
        a motion net and the clip's full frames `full` (B, T, 3, H, W), what it moves, a FramePrediction of moves
        (B, T, g, g) and those small frames."""
        c, k = self.config.context, self.config.action_context
        padded = torch.cat([frames[:, :1].expand(-1, c - 1, -1, -1, -1), frames], dim=1)  # (B, C-1+T, ...)
        out, moves = [], []
        for t in range(frames.shape[1]):
            context, recent = padded[:, t : t + c], recent_actions(actions, t, k)
            out.append(self.predict(context, recent))
            if self.motion is not None and full is not None:
                logits = self.motion.scores(context, recent, full[:, t])
                small = out[-1]
                moves.append(
                    self.motion.predict_moves(logits, full[:, t], lambda small=small: small, actions=actions[:, t])
                )
        if moves:  # the small frames too: what a redrawn square shows
            scores = None if moves[0].scores is None else torch.stack([m.scores for m in moves], 1)
            put = None if moves[0].put is None else Placement.stack([m.put for m in moves], 1)
            return FramePrediction(torch.stack([m.moves for m in moves], 1), torch.stack(out, 1), scores, put=put)
        return torch.stack(out, 1)

    def init_state(self, batch: int, device=None, dtype=None) -> FrameState:
        recent = torch.full((batch, self.config.action_context), NUM_ACTIONS, dtype=torch.long, device=device)
        return FrameState(frames=None, recent_actions=recent)

    def step(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        state: FrameState,
        inplace: bool = False,
        generator: torch.Generator | None = None,
        full: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, FrameState]:
        """frames (B, 3, r, r) the current frame, actions (B,) pressed now -> the next frame (B, 3, r, r), or with
        a motion net a FramePrediction (the small frame only when some square is redrawn; `full` (B, 3, H, W) is
        the current full frame, which it may read), and the new state (the old one is never modified; `inplace` is
        accepted for the session's API)."""
        c = self.config.context
        history = state.frames if state.frames is not None else frames[:, None].expand(-1, c - 1, -1, -1, -1)
        context = torch.cat([history, frames[:, None]], dim=1)  # (B, C, 3, r, r)
        recent = torch.cat([actions[:, None], state.recent_actions[:, :-1]], dim=1)  # (B, K), newest first
        if self.motion is None:
            return self.predict(context, recent, generator), FrameState(frames=context[:, 1:], recent_actions=recent)
        logits = self.motion.scores(context, recent, full)
        prediction = self.motion.predict_moves(
            logits, full, lambda: self.predict(context, recent, generator), state.placed, actions
        )
        return prediction, FrameState(frames=context[:, 1:], recent_actions=recent, placed=prediction.placed)


def unrolled_loss(
    dynamics: FrameDynamics,
    frames: torch.Tensor,
    actions: torch.Tensor,
    unroll: int,
    context_noise: float = 0.0,
    generator: torch.Generator | None = None,
    changed_weight: float = 0.0,
) -> torch.Tensor:
    """Mean MSE of `unroll` small frames of clips frames (B, C+U, 3, r, r), each predicted from the C frames
    before it, its own predictions fed back as context; real context frames get Gaussian noise of a std
    drawn per clip up to `context_noise` (so that rollouts stay on the frames it makes, as GameNGen's
    context noise does). changed_weight > 0 weighs the pixels that differ from the frame before 1 + this
    (MOVED_SMALL): the moving sprites are well under 1% of a frame, and an unweighted MSE lets them blur.
    A denoiser learns each of the `unroll` frames from the real (noised) frames before it instead: fed back, its
    prediction would be the mean it is there to avoid; it denoises the frame from a noise level drawn per clip.
    """
    c, k = dynamics.config.context, dynamics.config.action_context
    device = frames.device
    noisy_frames = frames[:, : c + unroll - 1]  # the context frames any step reads
    level = None
    if context_noise:
        level = torch.rand(len(frames), generator=generator).to(device) * context_noise  # (B,)
        noise = torch.randn(noisy_frames.shape, generator=generator).to(device)
        noisy_frames = noisy_frames + level[:, None, None, None, None] * noise
    context = noisy_frames[:, :c]
    loss = 0.0
    for u in range(unroll):
        recent, target = recent_actions(actions, c - 1 + u, k), frames[:, c + u]
        if dynamics.denoiser is None:
            predicted = dynamics.predict(context, recent)  # (B, 3, r, r)
            context = torch.cat([context[:, 1:], predicted[:, None]], dim=1)
        else:
            context = noisy_frames[:, u : u + c]
            sigma = (torch.randn(len(frames), generator=generator) * P_STD + P_MEAN).exp().to(device)
            noise = torch.randn(target.shape, generator=generator).to(device)
            noisy = target + sigma[:, None, None, None] * noise
            predicted = dynamics.denoise(context, recent, noisy, sigma, level)
        if changed_weight:
            weight = 1 + changed_weight * changed_mask(target, frames[:, c + u - 1], MOVED_SMALL)  # (B, 1, r, r)
            loss = loss + ((predicted - target).pow(2) * weight).sum() / (weight.sum() * target.shape[1])
        else:
            loss = loss + F.mse_loss(predicted, target)
    return loss / unroll


def recent_actions(actions: torch.Tensor, t: int, k: int) -> torch.Tensor:
    """actions (B, T) -> (B, k): the keys at t, t-1, ..., t-k+1 (NUM_ACTIONS where before the clip)."""
    picks = [actions[:, t - i] if t - i >= 0 else torch.full_like(actions[:, 0], NUM_ACTIONS) for i in range(k)]
    return torch.stack(picks, 1)
