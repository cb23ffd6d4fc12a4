"""The motion net: a frames dynamics that moves the previous frame's pixels instead of drawing the next frame.

A 2D game's next frame is mostly its last frame with a few sprites moved by whole pixels. Drawn anew (a denoised
small frame scaled up), a moved sprite is as sharp as the upsampler can make it, and in play what it loses
compounds. The motion net reads what the dynamics reads (the last small frames and the recent keys, through its
own U-Net with the keys in every block, core/keyed_unet.py) and scores, for each square of the full frame under
one small-frame pixel (4x4 for nano), each whole-pixel move within `radius` and "redraw". Play takes the likeliest:
the square is the previous frame's pixels moved by it (exact, so a sprite stays itself), or, for "redraw" (what
was not in the last frame: a scrolled-in edge, a sprite appearing), the dynamics' small frame drawn by the
upsampler. So a frame with nothing to redraw costs one U-Net at the small size and a gather.

It learns from pairs of real frames. A square's target is the set of moves that reproduce it (within `tolerance`
of the best move's mean difference; a uniform square accepts many) or "redraw" where none comes close; the loss is
the cross-entropy of the whole set (the log of the probability summed over it), with the squares that do not stay
put weighed `moving_weight` more: well under 1% of squares move, and unweighed a net learns "nothing moves".
Measured in the motion lab (configs/nano-v2/motion-lab, README "Moving pixels instead of drawing them").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.config import FrameDynamicsConfig
from core.frame_objects import draw_by_objects
from core.keyed_unet import KeyedUNet
from core.sprite_memory import Placement, SpriteMemory

# a square's difference to a move is taken on one channel: RGB weighted so that few palette colour pairs alias
COST_WEIGHTS = (1.0 / 7.4, 2.3 / 7.4, 4.1 / 7.4)
OUTCOME_TOLERANCE = 0.03  # mean |difference| ([-1, 1] units) under which two moves make the same square (as the
# frames stage's default motion_tolerance, within which it counts moves as equally right)


def move_table(radius: int) -> torch.Tensor:
    """-> (M, 2) long, each move's (dx, dy), rows for dy = -radius..radius, within them dx likewise; "stay" is the
    middle one (M // 2)."""
    steps = torch.arange(-radius, radius + 1)
    dy, dx = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack([dx.flatten(), dy.flatten()], 1)


SCORES_LAYER = "head.2"  # FrameMotion's last layer, one output per move and "redraw": what widen_moves widens
FAR_STEP = 6  # px: moves longer than this on either axis are "far" (nano's reach before it was widened)
# nats a widened head's farther move starts under the old move at the border it extends (widen_moves)
FAR_MOVE_START = 3.0


def widen_moves(weight: torch.Tensor, bias: torch.Tensor, old_radius: int, new_radius: int) -> tuple[torch.Tensor, ...]:
    """The last layer of a motion head (`weight` (M + 1, ...), `bias` (M + 1,): the moves within `old_radius`, then
    "redraw") -> the same layer for `new_radius`. Each old move keeps its row at its place in the wider table and
    "redraw" stays last; each farther move starts as the old move it extends (the nearest on the old border: 10 px
    up starts as 6 px up, what a net that reads a fall faster than its reach has learnt to score) less
    FAR_MOVE_START nats, so it is never picked over that move until it learns where it is the better one."""
    if new_radius < old_radius:
        raise ValueError(f"a motion head widens, it does not narrow (radius {old_radius} -> {new_radius})")
    wide = move_table(new_radius)
    nearest = wide.clamp(-old_radius, old_radius)
    rows = (nearest[:, 1] + old_radius) * (2 * old_radius + 1) + nearest[:, 0] + old_radius
    farther = (wide != nearest).any(1)
    rows = torch.cat([rows, rows.new_tensor([len(weight) - 1])])  # "redraw"
    farther = torch.cat([farther, farther.new_zeros(1)])
    return weight[rows].clone(), bias[rows] - FAR_MOVE_START * farther.to(bias.dtype)


@dataclass
class FramePrediction:
    """What a dynamics with a motion net predicts for the next frame(s)."""

    moves: torch.Tensor  # (..., g, g) long: per square a move id, or the motion net's `redraw` id
    small: torch.Tensor | None  # (..., 3, r, r) the dynamics' small frame; None when no square is redrawn
    # (..., g*g, M) each square's move log-probabilities (squares in raster order), kept to draw by objects
    scores: torch.Tensor | None = None
    # with a sprite memory (decode "objects"): the sprite put down last step that the net does not expect to stay
    # (lifted before the moves), the one put down now, and the one play follows from here (put down now, or
    # before and kept)
    lift: Placement | None = None
    put: Placement | None = None
    placed: Placement | None = None

    def __getitem__(self, index) -> FramePrediction:
        parts = (self.moves, self.small, self.scores, self.lift, self.put, self.placed)
        return FramePrediction(*(None if part is None else part[index] for part in parts))

    def clamped(self) -> FramePrediction:
        small = None if self.small is None else self.small.clamp(-1, 1)
        return FramePrediction(self.moves, small, self.scores, self.lift, self.put, self.placed)


class FrameMotion(KeyedUNet):
    def __init__(self, dynamics: FrameDynamicsConfig):
        config = dynamics.motion
        super().__init__(
            3 * dynamics.context,
            config.channels,
            config.mid_blocks,
            dynamics.action_mode,
            dynamics.action_context,
            dynamics.action_dim,
        )
        self.config = config
        self.register_buffer("offsets", move_table(config.radius), persistent=False)
        self.redraw = len(self.offsets)  # the id of "redraw", after the moves
        self.stay = self.redraw // 2
        self.head = nn.Sequential(
            nn.Conv2d(config.channels[0], config.hidden, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(config.hidden, self.redraw + 1, 1),
        )
        nn.init.zeros_(self.head[-1].weight)  # starts as "nothing moves"
        with torch.no_grad():
            self.head[-1].bias.zero_()
            self.head[-1].bias[self.stay] = 2.0
        self.sprites = SpriteMemory(config.sprites, config.sprite_size) if config.sprites else None
        self.unshuffle = config.full_frame // dynamics.resolution
        self.full_in = None
        if config.full_frame:  # the full frame's squares as channels, starting at zero
            self.full_in = nn.Conv2d(3 * self.unshuffle**2, config.channels[0], 3, padding=1)
            nn.init.zeros_(self.full_in.weight)
            nn.init.zeros_(self.full_in.bias)

    def scores(self, context: torch.Tensor, recent: torch.Tensor, frame: torch.Tensor | None = None) -> torch.Tensor:
        """context (B, C, 3, r, r) small frames, oldest first; recent (B, K) keys, newest first; frame (B, 3, H, W)
        the current full frame (read with config.full_frame) -> logits (B, M + 1, r, r) of each square's moves
        and, last, "redraw"."""
        x = self.stem(context.flatten(1, 2))
        if self.full_in is not None:
            if frame is None:
                raise ValueError("this motion net reads the full frame (dynamics.motion.full_frame): pass it")
            x = x + self.full_in(F.pixel_unshuffle(frame, self.unshuffle))
        return self.head(self.trunk(x, self.embed_actions(recent)))

    def choose(self, logits: torch.Tensor, frame: torch.Tensor | None = None) -> torch.Tensor:
        """logits (B, M + 1, g, g) -> the move ids play draws (B, g, g), by `config.decode`: each square's likeliest
        ("square"), or ("sprite") for squares that move and touch, the move likeliest over them all (the sum of
        their log-probabilities), where a square's own likeliest is not `sprite_margin` nats likelier; a square
        that is redrawn stays redrawn. ("outcome") first decides, for each square of `frame` (B, 3, H, W), the
        frame the moves apply to, whether it keeps its pixels (likeliest_outcome), then moves the others as
        "sprite". With `config.redraw` off, no square is redrawn. "stay" first gains `config.stay_bias` nats.
        ("objects" is decided segment by segment in `draw`, from what predict_moves keeps; here it picks as
        "sprite".)"""
        logits = self.play_logits(logits)
        moves = logits.argmax(1)
        if self.config.decode == "outcome":
            if frame is None:
                raise ValueError("decode 'outcome' needs the frame the moves apply to (choose(logits, frame))")
            moves = self.likeliest_outcome(logits, frame, moves)
        active = (moves != self.stay) & (moves != self.redraw)
        if self.config.decode == "square" or not active.any():
            return moves
        groups = touching_groups(active)  # (B, g, g), 0 where not active
        logp = logits.float().log_softmax(1)[:, : self.redraw]  # (B, M, g, g): the moves, not "redraw"
        # groups numbered apart across the batch, then 0..n-1: a sum per group, not per possible number
        keys = groups + torch.arange(len(groups), device=groups.device)[:, None, None] * (groups.numel() + 1)
        _, group = torch.unique(keys[active], return_inverse=True)
        chosen = logp.permute(0, 2, 3, 1)[active]  # (squares, M)
        totals = chosen.new_zeros(int(group.max()) + 1, self.redraw).index_add_(0, group, chosen)
        shared = moves.clone()
        shared[active] = totals.argmax(1)[group]
        own_best = logp.gather(1, moves.clamp(max=self.redraw - 1)[:, None])[:, 0]
        close = logp.gather(1, shared.clamp(max=self.redraw - 1)[:, None])[:, 0] >= own_best - self.config.sprite_margin
        return torch.where(active & close, shared, moves)

    def play_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The logits play picks from: without "redraw" when `config.redraw` is off, "stay" raised by
        `config.stay_bias` nats."""
        if not self.config.redraw:
            logits = logits[:, : self.redraw]
        if self.config.stay_bias:
            logits = logits.clone()
            logits[:, self.stay] += self.config.stay_bias
        return logits

    def predict_moves(
        self,
        logits: torch.Tensor,
        frame: torch.Tensor | None,
        small,
        placed: Placement | None = None,
        actions: torch.Tensor | None = None,
    ) -> FramePrediction:
        """logits (B, M + 1, g, g) for `frame` (B, 3, H, W) and the small frame callable `small()` (run only if a
        square is redrawn) -> the FramePrediction play draws; by objects, with the log-probabilities `draw` reads
        and each square's likeliest move, and with a sprite memory the sprites to lift and put down (`placed`: the
        one play follows, from the step before; `actions` (B,) the keys pressed, which pick what may appear)."""
        if self.config.decode == "objects":
            scores = self.play_logits(logits).float().flatten(2).transpose(1, 2).contiguous()  # (B, g*g, M)
            logp = scores.log_softmax(-1)[..., : self.redraw]
            moves = logp.argmax(-1).view(len(logits), *logits.shape[2:])
            if self.sprites is None:
                return FramePrediction(moves, None, logp)
            return self.remembered(FramePrediction(moves, None, logp), logits, frame, small, placed, actions)
        moves = self.choose(logits, frame)
        return FramePrediction(moves, small() if (moves == self.redraw).any() else None)

    def remembered(self, prediction, logits, frame, small, placed, actions) -> FramePrediction:
        """`prediction` with the sprite memory's part: a sprite put down where "redraw" is likelier than
        config.appear, and the one put down before lifted where the net gives its squares under even odds of
        staying. What a key makes appear often lasts only while it is held (a sword swung), and play by objects
        cannot make a many-segment sprite vanish whole."""
        biased = logits.float().clone()
        biased[:, self.stay] += self.config.stay_bias
        probs = biased.softmax(1)  # (B, M + 1, g, g)
        appear = probs[:, self.redraw] > self.config.appear  # (B, g, g)
        put, lift, kept = (self.sprites.nothing(frame) for _ in range(3))
        if appear.any() and actions is not None:
            prediction.small = small()
            put = self.sprites.choose(frame, prediction.small, appear, actions)
        if placed is not None and (placed.sprite[:, 0] >= 0).any():
            square = frame.shape[-1] // logits.shape[-1]
            there = self.sprites.still_there(frame, placed.sprite)
            for b in there.nonzero()[:, 0].tolist():
                ys, xs, _ = self.sprites.pixels(placed.sprite[b], *frame.shape[-2:])
                into = kept if probs[b, self.stay, ys // square, xs // square].mean() >= 0.5 else lift
                into.sprite[b], into.under[b] = placed.sprite[b], placed.under[b]
        prediction.lift, prediction.put = lift, put
        fresh = put.sprite[:, 0] >= 0
        prediction.placed = Placement(
            torch.where(fresh[:, None], put.sprite, kept.sprite),
            torch.where(fresh[:, None, None, None], put.under, kept.under),
        )
        return prediction

    def likeliest_outcome(self, logits: torch.Tensor, frame: torch.Tensor, moves: torch.Tensor) -> torch.Tensor:
        """Per square, "stay" where keeping its pixels is likelier than the likeliest change, else the likeliest
        move that changes them ("redraw" where `moves` redraws). The net learnt a set loss: where many moves make
        the same pixels (a uniform patch, a square a sprite leaves that any move fetching background clears) it
        spreads its probability over them, so the likeliest single move can be "stay" where the square should
        change (a trail of the sprite) or a move where it should stay (a torn wall). So an outcome weighs the
        probability of every move that makes it: moves within OUTCOME_TOLERANCE of the square's own pixels for
        keeping it; for the change, the moves that make what the likeliest changing move makes."""
        radius, square = self.config.radius, frame.shape[-1] // logits.shape[-1]
        logp = logits.float().log_softmax(1)[:, : self.redraw]  # (B, M, g, g): the moves, not "redraw"
        outcome = torch.full_like(moves, self.stay)
        # where "stay" alone holds half the probability, keeping is the likelier outcome: only the rest (a few
        # squares near what moves) need their moves compared
        unsure = (logp[:, self.stay] < math.log(0.5)) & (moves != self.redraw)
        if unsure.any():
            b, y, x = unsure.nonzero(as_tuple=True)
            made = moved_squares(frame, radius, square, b, y, x)  # (N, s*s, M): what each move makes of each square
            squares = logp.permute(0, 2, 3, 1)[b, y, x]  # (N, M)
            keeps = (made - made[:, :, self.stay, None]).abs().mean(1) <= OUTCOME_TOLERANCE
            keep_mass = squares.masked_fill(~keeps, float("-inf")).logsumexp(1)
            change = squares.masked_fill(keeps, float("-inf")).argmax(1)  # none changes it: its mass is keep's
            target = made.gather(2, change[:, None, None].expand(-1, made.shape[1], 1))
            alike = (made - target).abs().mean(1) <= OUTCOME_TOLERANCE
            change_mass = squares.masked_fill(~alike, float("-inf")).logsumexp(1)
            outcome[b, y, x] = torch.where(change_mass > keep_mass, change, outcome[b, y, x])
        return torch.where(moves == self.redraw, moves, outcome)

    def warp(self, frames: torch.Tensor, moves: torch.Tensor) -> torch.Tensor:
        """frames (B, 3, H, W), moves (B, g, g) ids -> each square of frames taken from where its move says:
        out[y, x] = frames[y - dy, x - dx], the nearest edge pixel past the border ("redraw" squares stay)."""
        b, channels, height, width = frames.shape
        square = height // moves.shape[-2]
        shift = self.offsets[moves.clamp(max=self.redraw - 1)]  # (B, g, g, 2)
        shift = shift.repeat_interleave(square, 1).repeat_interleave(square, 2)  # (B, H, W, 2)
        rows = torch.arange(height, device=frames.device)[:, None] - shift[..., 1]
        cols = torch.arange(width, device=frames.device)[None, :] - shift[..., 0]
        index = (rows.clamp(0, height - 1) * width + cols.clamp(0, width - 1)).flatten(1)  # (B, H*W)
        taken = frames.flatten(2).gather(2, index[:, None].expand(-1, channels, -1))
        return taken.view(b, channels, height, width)

    def draw(self, prediction: FramePrediction, prev_frames: torch.Tensor, upsampler: nn.Module) -> torch.Tensor:
        """The next frames (B, 3, H, W): prev_frames moved square by square, and where a square is redrawn the
        upsampler's drawing of the small frame (run only when some square needs it); with the net's scores kept
        (decode "objects"), moved segment by segment (core/frame_objects.py)."""
        if prediction.scores is None:
            return self.draw_squares(prediction, prev_frames, upsampler)
        if prediction.lift is not None:
            prev_frames = self.sprites.lift(prev_frames, prediction.lift)
        out = draw_by_objects(prev_frames, prediction.scores, prediction.moves.flatten(1), self.offsets, self.stay)
        if prediction.put is not None:
            out = self.sprites.put(out, prediction.put)
        return out

    def draw_squares(self, prediction: FramePrediction, prev_frames: torch.Tensor, upsampler: nn.Module):
        out = self.warp(prev_frames, prediction.moves)
        redraw = prediction.moves == self.redraw  # (B, g, g)
        if redraw.any():
            if prediction.small is None:
                raise ValueError("a FramePrediction that redraws squares needs its small frame")
            square = prev_frames.shape[-1] // redraw.shape[-1]
            where = redraw.repeat_interleave(square, 1).repeat_interleave(square, 2)[:, None]
            out = torch.where(where, upsampler(prediction.small, prev_frames), out)
        return out


def touching_groups(active: torch.Tensor) -> torch.Tensor:
    """active (B, g, g) bool -> (B, g, g) long: each active square the number (1..g*g) of its 8-way connected group
    (the largest square index in it), 0 elsewhere."""
    b, g, _ = active.shape
    index = torch.arange(1, g * g + 1, dtype=torch.float32, device=active.device).view(1, g, g)
    groups = torch.where(active, index, 0.0)
    for _ in range(g * g):  # each round spreads the largest index one square further; a group of n settles in n
        spread = F.max_pool2d(groups[:, None], 3, 1, 1)[:, 0] * active
        if torch.equal(spread, groups):
            break
        groups = spread
    return groups.long()


@torch.no_grad()
def move_costs(prev: torch.Tensor, nxt: torch.Tensor, radius: int, square: int) -> torch.Tensor:
    """prev, nxt (B, 3, H, W) -> (B, M, H/square, W/square): per square of nxt the mean absolute difference to
    prev moved by each move (on one weighted channel)."""
    weights = prev.new_tensor(COST_WEIGHTS)[:, None, None]
    prev, nxt = ((x * weights).sum(1, keepdim=True) for x in (prev, nxt))
    height, width = prev.shape[-2:]
    padded = F.pad(prev, (radius,) * 4, mode="replicate")
    costs = []
    for dx, dy in move_table(radius).tolist():
        moved = padded[..., radius - dy : radius - dy + height, radius - dx : radius - dx + width]
        costs.append(F.avg_pool2d((moved - nxt).abs(), square))
    return torch.cat(costs, 1)


def moved_squares(
    frames: torch.Tensor, radius: int, square: int, b: torch.Tensor, y: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """frames (B, 3, H, W) and N squares (batch b, row y, column x of the square grid) -> (N, square^2, M): each
    square as each move would make it, on move_costs' one weighted channel."""
    weights = frames.new_tensor(COST_WEIGHTS)[:, None, None]
    padded = F.pad((frames * weights).sum(1, keepdim=True), (radius,) * 4, mode="replicate")[:, 0]
    span = torch.arange(square + 2 * radius, device=frames.device)
    rows, cols = y[:, None] * square + span, x[:, None] * square + span  # (N, s + 2r): each square's surroundings
    around = padded[b[:, None, None], rows[:, :, None], cols[:, None, :]]  # (N, s + 2r, s + 2r)
    # a window at offset (oy, ox) of the surroundings is the square moved by (dx, dy) = (r - ox, r - oy): the
    # windows run opposite to move_table's order
    return F.unfold(around[:, None], square).flip(-1)


@torch.no_grad()
def acceptable_moves(
    prev: torch.Tensor, nxt: torch.Tensor, radius: int, square: int, tolerance: float, redraw_cost: float
) -> torch.Tensor:
    """-> (B, M + 1, g, g) bool, per square the moves within `tolerance` of its best move, or only "redraw" (the
    last) where even the best move is off by more than `redraw_cost` (mean |difference|, [-1, 1] units)."""
    costs = move_costs(prev, nxt, radius, square)
    best = costs.min(1, keepdim=True).values
    redraw = best > redraw_cost
    return torch.cat([(costs <= best + tolerance) & ~redraw, redraw], 1)


def far_only(acceptable: torch.Tensor) -> torch.Tensor:
    """acceptable (B, M + 1, g, g) -> (B, g, g) bool, the squares that some move makes and none within FAR_STEP px
    (on the longer axis): a platformer's jump, rarer than any other motion and what a widened net has to learn."""
    radius = (math.isqrt(acceptable.shape[1] - 1) - 1) // 2
    reach = move_table(radius).to(acceptable.device).abs().amax(1)
    moves = acceptable[:, :-1]
    return moves.any(1) & ~(moves & (reach <= FAR_STEP)[None, :, None, None]).any(1)


def moves_loss(
    logits: torch.Tensor, acceptable: torch.Tensor, moving_weight: float, far_weight: float = 0.0
) -> torch.Tensor:
    """Set cross-entropy: -log of the probability summed over each square's acceptable moves, the squares whose
    best move is not "stay" weighed 1 + moving_weight, those only a move beyond FAR_STEP makes far_weight more
    again. logits, acceptable (B, M + 1, g, g)."""
    total = torch.logsumexp(logits, 1)
    kept = torch.logsumexp(logits.masked_fill(~acceptable, -1e4), 1)
    stay = (acceptable.shape[1] - 1) // 2
    weight = 1 + moving_weight * (~acceptable[:, stay]).float()
    if far_weight:
        weight = weight + far_weight * far_only(acceptable).float()
    return ((total - kept) * weight).sum() / weight.sum()
