"""Frames stage: train a frames-family model (nano v2) end to end on gameplay clips.

Both trained parts learn from the same clips of C + U frames (C context frames, U predicted):
- the dynamics predicts each small frame from the C before it and the keys, feeding its own
  predictions back for U steps (a short unrolled loss, with noise on the real context frames,
  so that its rollouts stay on the frames it makes, as GameNGen's context noise does);
- the upsampler draws the full-size frame C from a small frame C and the full-size frame C-1;
  the small frame is the real one with a little noise, or, for a share of the clips, the
  dynamics' own prediction (what it gets in play), and pixels that moved can weigh more.
Loss: 100 x the dynamics' MSE (small frames change little, so their MSE is ~100x below the
upsampler's reconstruction loss) + the upsampler's L1 + MSE. Validation on held-out levels:
the dynamics' MSE with the true keys and with keys shuffled across clips (their gap is how much
the keys matter), repeating the last frame as the baseline, and the upsampler's PSNR from the
real small frame, from the dynamics' prediction, and from both on the pixels that moved (against
redrawing the previous frame there, which an upsampler that ignores motion scores, and against
scaling the real small frame up bilinearly), and after `unroll` frames played as the app plays.

A dynamics with a motion net (core/frame_motion.py) adds its set cross-entropy (weight 1) over
every real frame pair of the clips (or, with frames.motion_played, over the clips played on its
own moved frames), and `motion_*` validation metrics: how often its likeliest move is right,
its loss with shuffled keys, and the frames it draws, teacher-forced and played, against
repeating the last real frame.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.config import ConfigError
from core.evaluation.image_quality import masked_psnr
from core.frame_dynamics import recent_actions, unrolled_loss
from core.frame_motion import FramePrediction, acceptable_moves, far_only, moves_loss
from core.frames import changed_mask, to_model
from core.tokenizer import reconstruction_loss
from core.train.config import FramesSection
from core.train.dynamics import shuffled_actions
from core.train.loop import Stage
from core.train.tokenizer import psnr, save_grid

DYNAMICS_WEIGHT = 100.0
# squares around a motion crop (frames.motion_crop) that the motion net reads but is not scored on: its moves
# fetch pixels up to its radius away (6 px, under 2 squares of 4), so the scored squares' targets are the whole
# frame's, and the net's padding at the crop's edge touches no scored square's nearest neighbours
CROP_MARGIN = 2
# a frame pair where more than this share of the pixels changes is a scene cut (a new level, a new palette): a
# motion crop is placed by what moves, and on a cut everything does
CUT_SHARE = 0.25


class FramesObjective(nn.Module):
    """The frames stage's loss. `train_dynamics`/`train_upsampler`/`train_motion` leave a part's term out (its
    weights are then frozen): the upsampler alone (frames.freeze_dynamics), the dynamics alone (a LoRA fine-tune,
    whose adapter touches only the dynamics: the upsampler's term would be a constant that costs most of a step),
    or a motion net alone. "dynamics" here is the denoiser, without its motion net (dynamics.motion)."""

    def __init__(
        self,
        model,
        options: FramesSection,
        rare_weight: float = 0.0,
        *,
        train_dynamics: bool = True,
        train_upsampler: bool = True,
        train_motion: bool = True,
    ):
        super().__init__()
        self.dynamics, self.decoder = model.dynamics, model.decoder
        self.pool = model.tokenizer
        self.options, self.rare_weight = options, rare_weight
        self.train_dynamics, self.train_upsampler = train_dynamics, train_upsampler
        self.train_motion = train_motion and model.dynamics.motion is not None
        # only ever frozen here, never thawed: under a LoRA adapter the base weights stay frozen
        motion = {id(p) for p in self.motion.parameters()} if self.motion is not None else set()
        for p in self.dynamics.parameters():
            if not (train_motion if id(p) in motion else train_dynamics):
                p.requires_grad_(False)
        if not train_upsampler:
            self.decoder.requires_grad_(False)

    @property
    def motion(self):
        """The dynamics' motion net, or None (a property: as an attribute it would be saved twice)."""
        return self.dynamics.motion

    def prepare(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """uint8 clips (B, L, H, W, 3) -> full (B, L, 3, H, W), small (B, L, 3, r, r), actions (B, L)."""
        b, length = batch["frames"].shape[:2]
        flat = to_model(batch["frames"])  # (B*L, 3, H, W)
        full = flat.view(b, length, *flat.shape[1:])  # (B, L, 3, H, W)
        small = self.pool.encode(flat)
        small = small.view(b, length, *small.shape[1:])  # (B, L, 3, r, r)
        return full, small, batch["actions"]

    def rollout_loss(
        self,
        small: torch.Tensor,
        actions: torch.Tensor,
        noise: float,
        changed_weight: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        return unrolled_loss(
            self.dynamics, small, actions, self.options.unroll, noise, generator, changed_weight=changed_weight
        )

    def upsample(
        self,
        full: torch.Tensor,
        small: torch.Tensor,
        actions: torch.Tensor,
        noise: float,
        predicted_share: float,
        clips: int | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """-> (the upsampler's frame C, the real frame C, the real frame C-1), for the first `clips` clips. The
        upsampler gets frame C-1 and a small frame C: for the first `predicted_share` of the clips the
        dynamics' prediction from the real context (what play gives it), for the rest the real one + noise."""
        c, k = self.dynamics.config.context, self.dynamics.config.action_context
        full, small, actions = full[:clips], small[:clips], actions[:clips]
        given = small[:, c]
        if noise:
            given = given + noise * torch.randn_like(given)
        dreamed = round(predicted_share * len(given))
        if dreamed:
            with torch.no_grad():
                predicted = self.dynamics.predict(small[:dreamed, :c], recent_actions(actions[:dreamed], c - 1, k))
            given = torch.cat([predicted.clamp(-1, 1), given[dreamed:]])
        return self.decoder(given, full[:, c - 1]), full[:, c], full[:, c - 1]

    def play_loop(
        self, full: torch.Tensor, small: torch.Tensor, actions: torch.Tensor, steps: int, clips: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The first `clips` clips played as the app plays them (WorldModel.next_input), from their C real frames:
        the dynamics predicts from the pooled frames the upsampler drew, the upsampler draws from its own previous
        frame. -> (drawn, real, real before) (B, steps, 3, H, W) each. Only the upsampler gets gradients, one
        frame deep: it learns to clean what it and the dynamics left in the frames before."""
        c, k = self.dynamics.config.context, self.dynamics.config.action_context
        full, small, actions = full[:clips], small[:clips], actions[:clips]
        context, prev, drawn = small[:, :c], full[:, c - 1], []
        for j in range(steps):
            with torch.no_grad():
                predicted = self.dynamics.predict(context, recent_actions(actions, c - 1 + j, k)).clamp(-1, 1)
            frame = self.decoder(predicted, prev)
            drawn.append(frame)
            prev = frame.detach().clamp(-1, 1)
            context = torch.cat([context[:, 1:], self.pool.encode(prev)[:, None]], dim=1)
        return torch.stack(drawn, 1), full[:, c : c + steps], full[:, c - 1 : c - 1 + steps]

    def upsampler_loss(self, full, small, actions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (the upsampler's loss, what it drew, the real frames), by frames.closed_loop's choice."""
        options = self.options
        if options.closed_loop:
            drawn, target, prev = (
                x.flatten(0, 1)
                for x in self.play_loop(full, small, actions, options.closed_loop, options.decoder_clips)
            )
        else:
            drawn, target, prev = self.upsample(
                full, small, actions, options.small_noise, options.predicted_share, options.decoder_clips
            )
        extra = options.changed_weight * changed_mask(target, prev) if options.changed_weight else None
        return reconstruction_loss(drawn, target, self.rare_weight, extra), drawn, target

    def motion_pairs(
        self, full: torch.Tensor, small: torch.Tensor, actions: torch.Tensor, noise: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every (frame t, frame t+1) pair of the clips that has C frames up to t -> (contexts (N, C, 3, r, r) with
        Gaussian noise of a std drawn per clip up to `noise`, recent keys (N, K), full frames t (N, 3, H, W), the
        acceptable moves of frames t+1 (N, M + 1, g, g))."""
        c, k, options = self.dynamics.config.context, self.dynamics.config.action_context, self.options
        radius, square = self.motion.config.radius, full.shape[-1] // small.shape[-1]
        contexts, recents, before, acceptable = [], [], [], []
        for t in range(c - 1, small.shape[1] - 1):
            contexts.append(noisy_context(small[:, t - c + 1 : t + 1], noise))
            recents.append(recent_actions(actions, t, k))
            before.append(full[:, t])
            acceptable.append(
                acceptable_moves(
                    full[:, t], full[:, t + 1], radius, square, options.motion_tolerance, options.motion_redraw
                )
            )
        return torch.cat(contexts), torch.cat(recents), torch.cat(before), torch.cat(acceptable)

    def motion_play(
        self, full: torch.Tensor, small: torch.Tensor, actions: torch.Tensor, noise: float, learn: bool
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The clips played as the app plays them from their C real frames: the motion net moves its own last frame
        and reads its own frames pooled. -> (with `learn`, its loss at each of those states, whose targets are the
        moves that take its own frame to the real next one: so it learns to mend what its earlier moves tore; its
        last frame (B, 3, H, W)). Learning, a redrawn square takes the real next frame's pixels (the redraw is the
        denoiser's and upsampler's, not learnt here); else it is drawn by them, as in play."""
        c, k, options = self.dynamics.config.context, self.dynamics.config.action_context, self.options
        radius, square = self.motion.config.radius, full.shape[-1] // small.shape[-1]
        context, frame, losses = noisy_context(small[:, :c], noise), full[:, c - 1], []
        for t in range(c - 1, small.shape[1] - 1):
            recent = recent_actions(actions, t, k)
            logits = self.motion.scores(context, recent, frame)
            moves = self.motion.choose(logits.detach(), frame)
            if learn:
                acceptable = acceptable_moves(
                    frame, full[:, t + 1], radius, square, options.motion_tolerance, options.motion_redraw
                )
                losses.append(moves_loss(logits, acceptable, options.motion_moving_weight, options.motion_far_weight))
            with torch.no_grad():
                if learn:
                    redraw = (moves == self.motion.redraw).repeat_interleave(square, 1).repeat_interleave(square, 2)
                    frame = torch.where(redraw[:, None], full[:, t + 1], self.motion.warp(frame, moves))
                else:
                    needed = (moves == self.motion.redraw).any()
                    predicted = self.dynamics.predict(context, recent).clamp(-1, 1) if needed else None
                    frame = self.motion.draw(FramePrediction(moves, predicted), frame, self.decoder).clamp(-1, 1)
                context = torch.cat([context[:, 1:], self.pool.encode(frame)[:, None]], dim=1)
        return (torch.stack(losses).mean() if learn else None), frame

    def motion_loss(self, contexts, recents, before, acceptable, trim: int = 0) -> tuple[torch.Tensor, ...]:
        """-> (the motion net's set loss, on all but `trim` squares at each edge; the logits and the acceptable
        moves of the squares it scored)."""
        logits = self.motion.scores(contexts, recents, before)
        if trim:
            logits, acceptable = (x[..., trim:-trim, trim:-trim] for x in (logits, acceptable))
        loss = moves_loss(logits, acceptable, self.options.motion_moving_weight, self.options.motion_far_weight)
        return loss, logits, acceptable

    def motion_crops(self, full: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """full (B, L, 3, H, W) clips -> each cut to frames.motion_crop squares each way + CROP_MARGIN around, at a
        place that holds a pixel that changes in one of the pairs the motion net is scored on (anywhere in the
        crop; a random place in a clip where nothing changes): (full crops (B, L, 3, h, w), their small frames
        (B, L, 3, h/s, w/s)). Motion is under 1% of a game's squares: a crop spends a step's work where the moves
        are. Scene cuts (CUT_SHARE) place nothing: the first move after a new level (a serve) is otherwise hardly
        ever cropped. Past the frame's edge the crop repeats its edge pixels, as acceptable_moves does."""
        size, grid = self.options.motion_crop, self.dynamics.config.resolution
        square = full.shape[-1] // grid
        b, length = full.shape[:2]
        margin = CROP_MARGIN * square
        span = (size + 2 * CROP_MARGIN) * square
        padded = F.pad(full.flatten(0, 1), (margin,) * 4, mode="replicate")
        padded = padded.view(b, length, *padded.shape[1:])
        scored = full[:, self.dynamics.config.context - 1 :]
        changes = (scored[:, 1:] - scored[:, :-1]).abs().amax(2) > 0  # (B, pairs, H, W)
        cuts = changes.flatten(2).float().mean(2) > CUT_SHARE
        changed = (changes & ~cuts[..., None, None]).any(1)  # (B, H, W)
        crops = []
        for clip in range(b):
            ys, xs = changed[clip].nonzero(as_tuple=True)
            if len(ys):
                pick = int(torch.randint(len(ys), ()))
                y, x = int(ys[pick]) // square, int(xs[pick]) // square
            else:
                y, x = (int(v) for v in torch.randint(grid, (2,)))
            top, left = (min(max(v - int(torch.randint(size, ())), 0), grid - size) for v in (y, x))
            crops.append(padded[clip, :, :, top * square : top * square + span, left * square : left * square + span])
        crops = torch.stack(crops)
        small = F.avg_pool2d(crops.flatten(0, 1), square)
        return crops, small.view(b, length, *small.shape[1:])

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        full, small, actions = self.prepare(batch)
        options, loss, logs = self.options, 0.0, {}
        if self.train_motion and options.motion_played:
            motion_loss, _ = self.motion_play(full, small, actions, options.context_noise, learn=True)
            loss = loss + motion_loss
            logs["motion_loss"] = motion_loss.detach()
        elif self.train_motion:
            trim, pairs_full, pairs_small = 0, full, small
            if options.motion_crop:
                trim, (pairs_full, pairs_small) = CROP_MARGIN, self.motion_crops(full)
            contexts, recents, before, acceptable = self.motion_pairs(
                pairs_full, pairs_small, actions, options.context_noise
            )
            motion_loss, logits, acceptable = self.motion_loss(contexts, recents, before, acceptable, trim)
            loss = loss + motion_loss
            logs["motion_loss"] = motion_loss.detach()
            logs["motion_hit"] = acceptable.gather(1, logits.detach().argmax(1, keepdim=True)).float().mean()
        if self.train_dynamics:
            dynamics_loss = self.rollout_loss(small, actions, options.context_noise, options.changed_weight)
            loss = loss + DYNAMICS_WEIGHT * dynamics_loss
            logs["dynamics_mse"] = dynamics_loss.detach()
        if self.train_upsampler:
            upsampler_loss, drawn, target = self.upsampler_loss(full, small, actions)
            loss = loss + upsampler_loss
            logs["decoder_psnr"] = psnr(drawn.detach(), target).mean()
        return loss, {"loss": loss.detach(), **logs}


class FramesStage(Stage):
    data_kind = "gameplay"
    val_metrics = (
        "dynamics_mse",
        "dynamics_mse_shuffled_actions",
        "action_gap_relative",
        "copy_last_mse",
        "decoder_psnr",
        "dream_psnr",
        "moved_psnr",
        "moved_psnr_copy_last",
        "decoder_moved_psnr",
        "bilinear_moved_psnr",
        "loop_psnr",
        "loop_moved_psnr",
    )

    def __init__(self, config, model):
        super().__init__(config, model)
        if model.config.family != "frames":
            raise ConfigError(
                "the frames stage trains frames-family models (nano v2); this model's family is "
                f"{model.config.family!r}: use the tokenizer/tokens/dynamics/decoder stages for it"
            )
        frozen = config.frames.freeze_dynamics and config.frames.freeze_upsampler
        if frozen and (config.frames.freeze_motion or model.dynamics.motion is None):
            raise ConfigError(
                "frames.freeze_dynamics and frames.freeze_upsampler (and freeze_motion, or no dynamics.motion) "
                "together leave nothing to train"
            )
        needed = model.dynamics.config.context + max(config.frames.unroll, config.frames.closed_loop)
        if config.data.clip_len < needed:
            raise ConfigError(
                f"data.clip_len must be at least dynamics.context + frames.unroll (or closed_loop) = {needed}"
            )
        crop = config.frames.motion_crop
        if crop and not (crop % 4 == 0 and 0 < crop <= model.dynamics.config.resolution):
            raise ConfigError(
                f"frames.motion_crop must be 0 or a multiple of 4 up to the small frame's "
                f"{model.dynamics.config.resolution} pixels, got {crop}"
            )
        if crop and config.frames.motion_played:
            raise ConfigError("frames.motion_crop cuts real frame pairs; frames.motion_played plays whole clips")
        self.objective = FramesObjective(
            model,
            config.frames,
            config.train.rare_colour_weight,
            train_dynamics=not config.frames.freeze_dynamics,
            train_upsampler=not config.frames.freeze_upsampler,
            train_motion=not config.frames.freeze_motion,
        )
        if model.dynamics.motion is not None:
            self.val_metrics = self.val_metrics + MOTION_METRICS

    @torch.no_grad()
    def validate(self, batch):
        objective = self.objective
        full, small, actions = objective.prepare(batch)
        n = len(small)
        # the same noise for both (a denoiser's loss draws noise levels): only the keys differ
        true = objective.rollout_loss(small, actions, 0.0, generator=torch.Generator().manual_seed(0)).item()
        shuffled = objective.rollout_loss(
            small, shuffled_actions(actions), 0.0, generator=torch.Generator().manual_seed(0)
        ).item()
        c, u = objective.dynamics.config.context, objective.options.unroll
        copy = F.mse_loss(small[:, c - 1 : c].expand(-1, u, -1, -1, -1), small[:, c : c + u]).item()
        decoded, target, _ = objective.upsample(full, small, actions, 0.0, 0.0)
        # what a player sees after 1 and after `unroll` frames of play from real ones (the first is the dynamics'
        # prediction drawn from the real previous frame), on the whole frame and where it moved
        played = objective.play_loop(full, small, actions, u)
        dreamed, prev = played[0][:, 0], played[2][:, 0]
        looped, real, before = (x[:, -1] for x in played)
        # the upsampler on what moved: redrawing the previous frame there scores moved_psnr_copy_last
        moved = changed_mask(target, prev)
        return {
            "dynamics_mse": (true * n, n),
            "dynamics_mse_shuffled_actions": (shuffled * n, n),
            "action_gap_relative": ((shuffled - true) / max(true, 1e-12) * n, n),
            "copy_last_mse": (copy * n, n),
            "decoder_psnr": (psnr(decoded, target).sum().item(), n),
            "dream_psnr": (psnr(dreamed, target).sum().item(), n),
            "moved_psnr": (masked_psnr(dreamed, target, moved).item() * n, n),
            "moved_psnr_copy_last": (masked_psnr(prev, target, moved).item() * n, n),
            # the same pixels drawn from the real small frame, by the upsampler and by plain bilinear scaling:
            # an upsampler below bilinear there is what smears a moving sprite, whatever the dynamics does
            "decoder_moved_psnr": (masked_psnr(decoded, target, moved).item() * n, n),
            "bilinear_moved_psnr": (
                masked_psnr(objective.pool.decode(small[:, c], target.shape[-1]), target, moved).item() * n,
                n,
            ),
            "loop_psnr": (psnr(looped, real).sum().item(), n),
            "loop_moved_psnr": (masked_psnr(looped, real, changed_mask(real, before)).item() * n, n),
            **(self.validate_motion(full, small, actions) if objective.motion is not None else {}),
        }

    def validate_motion(self, full, small, actions) -> dict:
        """The motion net on every pair of the clips: its loss with the true and with shuffled keys, how often its
        likeliest move is an acceptable one (of all squares, of those that move, of those only a move longer than
        core.frame_motion.FAR_STEP makes), and the frame it draws from the real one before against the real next
        frame, beside that real frame repeated (whole frame and where it changed; redrawn squares drawn by the
        upsampler from the dynamics' small frame), and the clips played on its own frames to their end."""
        objective = self.objective
        contexts, recents, before, acceptable = objective.motion_pairs(full, small, actions, 0.0)
        loss, logits, _ = objective.motion_loss(contexts, recents, before, acceptable)
        shuffled, *_ = objective.motion_loss(contexts, shuffled_actions(recents), before, acceptable)
        moves = objective.motion.choose(logits, before)
        hit = acceptable.gather(1, moves[:, None])[:, 0]
        moving = ~acceptable[:, objective.motion.stay]
        far = far_only(acceptable)
        c = objective.dynamics.config.context
        after = full[:, c:].transpose(0, 1).flatten(0, 1)  # frames t+1, in motion_pairs' order
        redrawn = moves == objective.motion.redraw
        small_next = objective.dynamics.predict(contexts, recents).clamp(-1, 1) if redrawn.any() else None
        drawn = objective.motion.draw(FramePrediction(moves, small_next), before, objective.decoder).clamp(-1, 1)
        changed = changed_mask(after, before)
        n = len(moves)
        _, looped = objective.motion_play(full, small, actions, 0.0, learn=False)
        return {
            "motion_loss": (loss.item() * n, n),
            "motion_loss_shuffled_actions": (shuffled.item() * n, n),
            "motion_hit": (hit.float().mean().item() * n, n),
            "motion_hit_moving": (hit[moving].float().sum().item(), moving.sum().item()),
            "motion_hit_far": (hit[far].float().sum().item(), far.sum().item()),
            "motion_redraw_share": (redrawn.float().mean().item() * n, n),
            "motion_psnr": (psnr(drawn, after).sum().item(), n),
            "motion_psnr_copy_last": (psnr(before, after).sum().item(), n),
            "motion_moved_psnr": (masked_psnr(drawn, after, changed).item() * n, n),
            # the clips played as the app plays them, to their last frame, beside their frame C-1 repeated
            "motion_loop_psnr": (psnr(looped, full[:, -1]).sum().item(), len(full)),
            "motion_loop_psnr_copy_last": (psnr(full[:, c - 1], full[:, -1]).sum().item(), len(full)),
        }

    @torch.no_grad()
    def write_samples(self, batch, path):
        """Rows: the real frame C-1, the real frame C, the dreamed frame C (dynamics, then upsampler), and with a
        motion net the frame C it draws (frame C-1 moved)."""
        objective = self.objective
        full, small, actions = objective.prepare({k: v[:4] for k, v in batch.items()})
        dreamed, target, prev = objective.upsample(full, small, actions, 0.0, 1.0)
        rows = [prev, target, dreamed.clamp(-1, 1)]
        if objective.motion is not None:
            c, k = objective.dynamics.config.context, objective.dynamics.config.action_context
            context, recent = small[:, :c], recent_actions(actions, c - 1, k)
            moves = objective.motion.choose(objective.motion.scores(context, recent, prev), prev)
            predicted = FramePrediction(moves, objective.dynamics.predict(context, recent).clamp(-1, 1))
            rows.append(objective.motion.draw(predicted, prev, objective.decoder).clamp(-1, 1))
        save_grid(rows, path)


def noisy_context(context: torch.Tensor, noise: float) -> torch.Tensor:
    """context (B, C, 3, r, r) under Gaussian noise of a std drawn per clip up to `noise` (none at 0)."""
    if not noise:
        return context
    return context + noise * torch.rand(len(context), 1, 1, 1, 1, device=context.device) * torch.randn_like(context)


MOTION_METRICS = (
    "motion_loss",
    "motion_loss_shuffled_actions",
    "motion_hit",
    "motion_hit_moving",
    "motion_hit_far",
    "motion_redraw_share",
    "motion_psnr",
    "motion_psnr_copy_last",
    "motion_moved_psnr",
    "motion_loop_psnr",
    "motion_loop_psnr_copy_last",
)

STAGE = FramesStage
