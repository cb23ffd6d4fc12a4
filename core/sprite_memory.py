"""A sprite memory: what a game's keys make appear (a sword swung, a bullet fired), kept exact from real play, put
down where the motion net expects something that the last frame does not hold, and lifted again when the net no
longer expects it to stay.

Play by objects (core/frame_objects.py) moves what is on screen and cannot make anything new, so a key whose only
effect is a new sprite is never seen in a dream. The motion net's "redraw" score says where something appears and
the dynamics' small frame (64x64) roughly what, but drawn from the small frame a sword is a pale blob that play by
objects then keeps and drags along. A 2D game draws what appears from a small set of sprites, as a tile-based
renderer does; so the memory holds the sprites that appeared in real play (`collect_sprites`: groups of touching
segments of the next frame that no move of the last one within the motion net's radius makes) whose appearances
depend on a button, exact in colour and shape; play (core/frame_motion.py) puts down, of those the pressed key
makes likelier, the one that at its best whole-pixel place brings the small frame's pooled squares nearest
(`SpriteMemory.choose`), and lifts it, restoring what it covered, when the net stops expecting it to stay (what a
key makes appear often lasts only while it is held, and play by objects cannot make a many-segment sprite vanish
whole). Measured in README "A sprite memory".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from scipy import ndimage

from core.actions import BUTTONS, NUM_ACTIONS, to_buttons
from core.frame_objects import COLOUR_TOLERANCE, SMALLEST_SEGMENT, colour_segments

MATCHED = 0.9  # of a sprite's pixels found again, moved, in the last frame: it was there, not new
GAIN = 0.3  # of the pooled error under it that a sprite must remove to be put down: a blob it does not explain
# (a smear of the small frame, an enemy's step) is left alone
# a sprite's appearances depend on a button when the G-test of independence (held or not: 1 degree of freedom)
# passes this (p < 0.001): a sword that shows only while FIRE is held (half the keys), 100 times, scores 139
KEYED = 10.83


def new_sprites(prev: np.ndarray, nxt: np.ndarray, radius: int, size: int) -> list[tuple[bytes, np.ndarray]]:
    """prev, nxt (H, W, 3) uint8 consecutive frames -> the sprites of nxt that no whole-pixel move of prev within
    `radius` makes: each as (a key that identifies its pixels, its (size, size, 4) RGBA patch from its top-left
    corner). A sprite is a group of touching (8-way) colour segments that changed, within size x size pixels
    (a sword drawn in two tones in a checker is a dozen segments)."""
    labels = colour_segments(nxt)
    small = np.zeros(labels.max() + 1, dtype=bool)
    small[labels[(prev != nxt).any(-1)]] = True  # a segment none of whose pixels changed was there
    for index, box in enumerate(ndimage.find_objects(labels + 1)):
        if small[index] and (box[0].stop - box[0].start > size or box[1].stop - box[1].start > size):
            small[index] = False  # the background, a wall, an uncovered floor: not a sprite
    groups, _ = ndimage.label(small[labels], structure=np.ones((3, 3)))
    height, width, _ = prev.shape
    steps = np.arange(-radius, radius + 1)
    found = []
    for group, box in enumerate(ndimage.find_objects(groups), start=1):
        rows, cols = box
        if rows.stop - rows.start > size or cols.stop - cols.start > size:
            continue
        ys, xs = np.nonzero(groups[box] == group)
        if len(ys) < SMALLEST_SEGMENT:
            continue
        ys, xs = ys + rows.start, xs + cols.start
        # (N, M) each pixel of the sprite as each move would fetch it from prev (past the edge, the edge's)
        from_rows = np.clip(ys[:, None, None] - steps[None, :, None], 0, height - 1)  # (N, 2r+1, 1)
        from_cols = np.clip(xs[:, None, None] - steps[None, None, :], 0, width - 1)  # (N, 1, 2r+1)
        sy, sx = (
            np.broadcast_to(x, (len(ys), len(steps), len(steps))).reshape(len(ys), -1) for x in (from_rows, from_cols)
        )
        same = np.abs(prev[sy, sx].astype(np.int16) - nxt[ys, xs][:, None].astype(np.int16)).sum(-1) < COLOUR_TOLERANCE
        if same.mean(0).max() >= MATCHED:
            continue
        patch = np.zeros((size, size, 4), dtype=np.uint8)
        patch[ys - rows.start, xs - cols.start, :3] = nxt[ys, xs]
        patch[ys - rows.start, xs - cols.start, 3] = 255
        found.append((patch.tobytes(), patch))
    return found


def collect_sprites(
    transitions: Iterable[tuple[np.ndarray, np.ndarray, int]], count: int, size: int, radius: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Over consecutive real frames and the key pressed between them (prev, nxt, action), the `count` sprites that
    keys make appear (sprites of a shape whose appearances depend on a button: _button_lifts) that drew the most
    pixels ->
    ((count, size, size, 4) uint8 RGBA patches, empty slots all zero; (count, NUM_ACTIONS) float32 how much
    likelier its shape appeared after each key than after any; how many distinct sprites appeared)."""
    seen, patches, presses = Counter(), {}, Counter()
    after = {}  # per shape (a level's palette recolours a sword; the keys that make it appear do not change)
    for prev, nxt, action in transitions:
        presses[int(action)] += 1
        for key, patch in new_sprites(prev, nxt, radius, size):
            seen[key] += 1
            after.setdefault(_shape(patch), Counter())[int(action)] += 1
            patches.setdefault(key, patch)
    lifts = {shape: _button_lifts(counts, presses) for shape, counts in after.items()}
    keyed_shapes = {shape for shape, lift in lifts.items() if (lift != 1).any()}
    # enemies step into new poses and walls open whatever the keys: what a key makes appear is what play may draw
    keyed = [key for key in seen if _shape(patches[key]) in keyed_shapes]
    # ranked by the pixels they drew over all their appearances: a speck that reappears from under a passing
    # sprite draws less than a sword swung now and then
    keyed.sort(key=lambda key: seen[key] * int((patches[key][..., 3] > 0).sum()), reverse=True)
    bank = np.zeros((count, size, size, 4), dtype=np.uint8)
    keys = np.zeros((count, NUM_ACTIONS), dtype=np.float32)
    for slot, key in enumerate(keyed[:count]):
        bank[slot], keys[slot] = patches[key], lifts[_shape(patches[key])]
    return bank, keys, len(seen)


def _shape(patch: np.ndarray) -> bytes:
    return (patch[..., 3] > 0).tobytes()


def _button_lifts(appeared: Counter, presses: Counter) -> np.ndarray:
    """-> (NUM_ACTIONS,) how much likelier a sprite appears after each key than after any, from the buttons its
    appearances depend on (a G-test per button, held or not: KEYED): a sword that shows after FIRE, whichever way
    the stick points, is likelier after every key that holds FIRE, where its counts per key are few and held keys
    (a sword already out is not new) spread them unevenly."""
    total, seen = sum(presses.values()), sum(appeared.values())
    lift = np.ones(NUM_ACTIONS, dtype=np.float32)
    for button in BUTTONS:
        held = np.array([button in to_buttons(action) for action in range(NUM_ACTIONS)])
        pressed = sum(n for action, n in presses.items() if held[action])
        if not 0 < pressed < total:
            continue
        shown = sum(n for action, n in appeared.items() if held[action])
        rates = np.array([(seen - shown) / (total - pressed), shown / pressed]) / (seen / total)  # not held, held
        counts = np.array([seen - shown, shown])
        statistic = 2.0 * sum(n * np.log(rate) for n, rate in zip(counts, rates) if n)
        if statistic >= KEYED:
            lift *= rates[held.astype(int)]
    return lift


@dataclass
class Placement:
    """Remembered sprites put down, at most one a frame: sprite (..., 3) long (id, top row, left column), id -1 for
    none; under (..., 3, S, S) the pixels of the frame it was put on, from that corner (what lifting it restores)."""

    sprite: torch.Tensor
    under: torch.Tensor

    def __getitem__(self, index) -> Placement:
        return Placement(self.sprite[index], self.under[index])

    @staticmethod
    def stack(placements: list[Placement], dim: int) -> Placement:
        return Placement(*(torch.stack([getattr(p, name) for p in placements], dim) for name in ("sprite", "under")))


class SpriteMemory(nn.Module):
    """`count` RGBA sprites of up to size x size pixels (buffers: saved and loaded with the model's weights)."""

    def __init__(self, count: int, size: int):
        super().__init__()
        self.size = size
        self.register_buffer("patches", torch.zeros(count, size, size, 4, dtype=torch.uint8))  # RGBA
        # (K, NUM_ACTIONS) how much likelier each sprite's shape appeared after each key than after any
        self.register_buffer("keys", torch.zeros(count, NUM_ACTIONS))

    def nothing(self, frames: torch.Tensor) -> Placement:
        """No sprite placed on any of frames (B, 3, H, W)."""
        sprites = torch.full((len(frames), 3), -1, dtype=torch.long)
        return Placement(sprites, frames.new_zeros(len(frames), 3, self.size, self.size))

    def choose(
        self, frames: torch.Tensor, small: torch.Tensor, appear: torch.Tensor, actions: torch.Tensor
    ) -> Placement:
        """frames (B, 3, H, W) in [-1, 1] the current frames, small (B, 3, g, g) the dynamics' next small frames,
        appear (B, g, g) bool the squares where the net expects something new, actions (B,) the keys pressed ->
        per frame, of the remembered sprites that key makes appear, the one that, put down on it, brings the
        pooled squares of a touching group of those squares nearest the small frame, where it removes GAIN of
        their error."""
        placement = self.nothing(frames)
        chosen = placement.sprite
        square = frames.shape[-1] // small.shape[-1]  # full-frame pixels per small-frame pixel, each way
        cover, colour = self.pooled(square)
        for b in range(len(frames)):
            groups, count = ndimage.label(appear[b].cpu().numpy(), structure=np.ones((3, 3)))
            keyed = self.keys[:, int(actions[b])] > 1  # (K,) likelier than on average after this key
            best = 0.0
            for group in range(1, count + 1):
                region = torch.from_numpy(groups == group)
                found = self._best_place(
                    frames[b].float(), small[b].float(), region, cover[keyed], colour[keyed], square
                )
                if found is not None:
                    found = (found[0], int(keyed.nonzero()[found[1], 0]), *found[2:])
                if found is not None and found[0] > best:
                    best, chosen[b] = found[0], torch.tensor(found[1:])
            if chosen[b, 0] >= 0:
                _, row, col = chosen[b].tolist()
                corner = frames[b, :, row : row + self.size, col : col + self.size]
                placement.under[b, :, : corner.shape[1], : corner.shape[2]] = corner
        return placement

    def _best_place(self, frame, small, region, cover, colour, square):
        """-> (gain, sprite, row, col) of the best sprite (of cover, colour: `pooled`'s) for one group of squares,
        or None."""
        grid = region.shape[0]
        if not len(cover):
            return None
        span = cover.shape[-1]  # squares a sprite can touch, each way
        ys, xs = region.nonzero(as_tuple=True)
        # the squares around the group that a sprite touching it can reach
        top, left = max(int(ys.min()) - span + 1, 0), max(int(xs.min()) - span + 1, 0)
        bottom, right = min(int(ys.max()) + span, grid), min(int(xs.max()) + span, grid)
        if bottom - top < span or right - left < span:
            return None
        pooled = nn.functional.avg_pool2d(frame[None], square)[0]  # (3, g, g)
        now, wanted = pooled[:, top:bottom, left:right], small[:, top:bottom, left:right]  # (3, h, w)
        inside = region[top:bottom, left:right].float()  # (h, w)
        # every place of a span x span window: (L, 3, span, span) pooled now and wanted, (L, span, span) inside
        now_w, wanted_w = (_windows(x, span) for x in (now, wanted))
        inside_w = _windows(inside[None], span)[:, 0]
        drawn = now_w[None, None] * (1 - cover)[:, :, None, None] + colour[:, :, None]  # (K, 16, L, 3, span, span)
        before = (now_w - wanted_w).pow(2).sum((1, 2, 3))  # (L,)
        after = (drawn - wanted_w).pow(2).sum((3, 4, 5))  # (K, 16, L)
        touches = (cover[:, :, None] * inside_w[None, None]).sum((3, 4)) > 0  # (K, 16, L)
        gain = torch.where(touches, before - after, float("-inf"))
        sprite, rest = divmod(int(gain.argmax()), gain.shape[1] * gain.shape[2])
        phase, place = divmod(rest, gain.shape[2])
        if not gain[sprite, phase, place] > GAIN * before[place]:
            return None
        places_across = right - left - span + 1
        row = (top + place // places_across) * square + phase // square
        col = (left + place % places_across) * square + phase % square
        return float(gain[sprite, phase, place]), sprite, row, col

    def pixels(self, placed: torch.Tensor, height: int, width: int):
        """placed (3,) a sprite's (id, row, col) -> ys, xs (N,) the frame pixels it covers, and its colours (3, N)
        in [-1, 1]."""
        sprite, row, col = (int(v) for v in placed)
        patch = self.patches[sprite]
        ys, xs = (patch[..., 3] > 0).nonzero(as_tuple=True)
        colours = patch[ys, xs, :3].T.float() / 127.5 - 1
        ys, xs = ys + row, xs + col
        inside = (ys < height) & (xs < width)
        return ys[inside], xs[inside], colours[:, inside]

    def still_there(self, frames: torch.Tensor, placed: torch.Tensor) -> torch.Tensor:
        """frames (B, 3, H, W), placed (B, 3) -> (B,) bool: each placed sprite is in its frame where it was put."""
        there = torch.zeros(len(frames), dtype=torch.bool)
        for b in (placed[:, 0] >= 0).nonzero()[:, 0].tolist():
            ys, xs, colours = self.pixels(placed[b], *frames.shape[-2:])
            there[b] = bool(((frames[b][:, ys, xs].float() - colours).abs() < 1 / 64).all())
        return there

    def put(self, frames: torch.Tensor, placement: Placement) -> torch.Tensor:
        """frames (B, 3, H, W) with each placed sprite put down."""
        out = frames.clone()
        for b in (placement.sprite[:, 0] >= 0).nonzero()[:, 0].tolist():
            ys, xs, colours = self.pixels(placement.sprite[b], *frames.shape[-2:])
            out[b][:, ys, xs] = colours.to(frames.dtype)
        return out

    def lift(self, frames: torch.Tensor, placement: Placement) -> torch.Tensor:
        """frames (B, 3, H, W) with each placed sprite lifted: the pixels under it as they were when it was put."""
        out = frames.clone()
        for b in (placement.sprite[:, 0] >= 0).nonzero()[:, 0].tolist():
            ys, xs, _ = self.pixels(placement.sprite[b], *frames.shape[-2:])
            _, row, col = placement.sprite[b].tolist()
            out[b][:, ys, xs] = placement.under[b][:, ys - row, xs - col].to(frames.dtype)
        return out

    def pooled(self, square: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each sprite at each of the square^2 offsets within a square, pooled to squares: (K, square^2, span,
        span) the part of each square it covers, (K, square^2, 3, span, span) its colours' share of each square's
        mean."""
        count, size = len(self.patches), self.size
        span = size // square + 1
        canvas = torch.zeros(count, square * square, 4, span * square, span * square)
        rgba = self.patches.permute(0, 3, 1, 2).float()  # (K, 4, S, S)
        alpha = (rgba[:, 3:] > 0).float()
        rgba = torch.cat([(rgba[:, :3] / 127.5 - 1) * alpha, alpha], 1)  # colours where the sprite is, else 0
        for phase in range(square * square):
            dy, dx = divmod(phase, square)
            canvas[:, phase, :, dy : dy + size, dx : dx + size] = rgba
        pooled = nn.functional.avg_pool2d(canvas.flatten(0, 1), square).view(count, square * square, 4, span, span)
        return pooled[:, :, 3], pooled[:, :, :3]


def _windows(x: torch.Tensor, span: int) -> torch.Tensor:
    """x (C, h, w) -> (L, C, span, span) every span x span window, rows first."""
    windows = x.unfold(1, span, 1).unfold(2, span, 1)  # (C, h', w', span, span)
    return windows.permute(1, 2, 0, 3, 4).flatten(0, 1)
