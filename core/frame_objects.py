"""Play by objects: each sprite of the previous frame moves whole, by the move the motion net finds likeliest for it.

The motion net scores moves per 4x4 square. A square holds parts of several things (a player and the wall it
presses against, a paddle's end and the black around it), and squares chosen one by one, or in touching groups,
tear what they split: a wall dragged along with the player, a paddle that shrinks to a stub. In a 2D game the
things that move are sprites, rigid for a frame. So this decoding cuts the previous frame into its colour segments
(4-connected pixels within COLOUR_TOLERANCE of each other: a sprite, a wall tile, a brick, each part of a
many-coloured sprite), and a segment moves by the move that the net finds likelier than staying for the pixels it
would change, or vanishes (a brick broken, a coin taken) where the net expects the colour around it there;
touching parts of one sprite agree on one move. The frame is then the previous one with the moving segments
lifted (their place filled with the colour around them) and put down moved: nothing tears, blurs or changes
colour, and a segment that moves keeps its shape. The frame's edge stops a segment, as a game's walls stop its
player (a thing leaves the frame only by vanishing), and so do the walls themselves: nothing moves into a solid
(stop_at_solids).

What it cannot do: make something new (a bullet fired, an enemy arriving, a score changing) or scroll the whole
frame (the background is one large segment, which stays put): a game whose screen scrolls plays by "sprite".
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from scipy import ndimage
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

COLOUR_TOLERANCE = 48  # summed |RGB difference| (0-255) of neighbours in one segment: exact palettes, and a
# video's compression noise kept inside one sprite without joining it to a background of another colour
LARGEST_SEGMENT = 1 / 8  # of the frame: larger segments (the background, the sky) stay put
SMALLEST_SEGMENT = 4  # pixels: smaller ones (a star, a speck of compression noise) move only with a sprite
SOLID_AREA = 1 / 32  # of the frame: a colour (not the background's) covering more is the level's walls or ground
VOTERS = 32  # pixels of a segment that vote on its candidate moves
CANDIDATES = 3  # moves a segment's vote proposes, each judged on the pixels it would change
ENCLOSED = 3 / 4  # share of a segment's border one larger thing must hold for it to be a part of that thing
GROUP_MARGIN = 8.0  # nats by which a touching segment's own move must beat its group's for it to move apart
UNSEEN = 1e-6  # the probability of a colour no likely move fetches: one such pixel is not a veto


def colour_segments(frame: np.ndarray) -> np.ndarray:
    """frame (H, W, 3) uint8 -> (H, W) int labels: 4-connected pixels whose colours differ by under COLOUR_TOLERANCE
    (summed over RGB) share one."""
    height, width, _ = frame.shape
    count = height * width
    planes = frame.transpose(2, 0, 1).astype(np.int16)  # (3, H, W): channel sums are fast across planes
    across, down = np.abs(np.diff(planes, axis=2)), np.abs(np.diff(planes, axis=1))
    # each pixel's edges to its right and lower neighbours where their colours are close, built straight into a
    # sparse row layout (a COO matrix's conversion cost as much as the search)
    joins = np.zeros((height, width, 2), dtype=bool)
    joins[:, :-1, 0] = across[0] + across[1] + across[2] < COLOUR_TOLERANCE
    joins[:-1, :, 1] = down[0] + down[1] + down[2] < COLOUR_TOLERANCE
    joins = joins.reshape(count, 2)
    indptr = np.zeros(count + 1, dtype=np.int32)
    np.cumsum(joins[:, 0].astype(np.int32) + joins[:, 1], out=indptr[1:])
    index = np.arange(count, dtype=np.int32)[:, None] + np.array([1, width], dtype=np.int32)
    graph = csr_matrix((np.ones(int(indptr[-1])), index[joins], indptr), shape=(count, count))
    return connected_components(graph, directed=True, connection="weak")[1].reshape(height, width)


class Scene:
    """One frame cut into segments, with the net's move probabilities for the next: what deciding its moves reads.

    image (H, W, 3) int the frame; logp (g*g, M) each square's move log-probabilities, squares in raster order;
    offsets (M, 2) each move's (dx, dy); stay the id of "stay"; likeliest (g*g,) each square's likeliest move, when
    known."""

    def __init__(self, image: torch.Tensor, logp: torch.Tensor, offsets: torch.Tensor, stay: int, likeliest=None):
        self.height, self.width, _ = image.shape
        grid = math.isqrt(len(logp))
        self.square = self.height // grid
        self.offsets, self.stay, self.logp = offsets, stay, logp
        self.likeliest = logp.argmax(1) if likeliest is None else likeliest  # (g*g,)
        self.vanish = len(offsets)  # a segment's "move" that lifts it and puts it down nowhere
        self.labels = torch.from_numpy(colour_segments(image.byte().numpy())).long()  # (H, W)
        self.sizes = torch.bincount(self.labels.flatten())  # (S,)
        self.segment_tone = self.segment_tones(image)  # (S,)
        self.tones = self.segment_tone[self.labels]  # (H, W)
        # maps padded by the move radius (past the edge, the edge's), so that where each move fetches a pixel from,
        # or puts it, is one index step from the pixel: fetch (M,) the steps back to each source, land forward
        self.radius = int(offsets.abs().max())
        self.padded_width = self.width + 2 * self.radius
        self.squares, self.padded_squares, self.padding = layout(self.height, self.width, self.square, self.radius)
        self.padded_tones, self.padded_labels = self.tones.flatten()[self.padding], self.labels.flatten()[self.padding]
        self.fetch = -(offsets[:, 1] * self.padded_width + offsets[:, 0])
        self.land = -self.fetch

    def padded_index(self, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        """-> (N,) where pixels (ys, xs) are in the padded maps."""
        return (ys + self.radius) * self.padded_width + xs + self.radius

    def segment_tones(self, image: torch.Tensor) -> torch.Tensor:
        """-> (S,) long, a colour class per segment: segments whose mean colours are within COLOUR_TOLERANCE share
        the class of the largest of them (one palette colour in two places, or under a video's noise)."""
        sizes = self.sizes.float()
        flat = self.labels.flatten()
        means = torch.zeros(len(sizes), 3).index_add_(0, flat, image.reshape(-1, 3).float()) / sizes[:, None]
        order = sizes.argsort(descending=True)
        alike = torch.cdist(means[order], means[order], p=1) < COLOUR_TOLERANCE  # (S, S), largest first
        tone = torch.empty(len(sizes), dtype=torch.long)
        tone[order] = order[alike.float().argmax(1)]  # the first (largest) alike segment
        return tone

    def voters(self, ids: torch.Tensor):
        """pixels_of(ids), but at most VOTERS evenly spread pixels of each segment: the vote only proposes moves."""
        ys, xs, segment = pixels_of(self.labels, ids)
        counts = torch.bincount(segment, minlength=len(ids))
        order = torch.argsort(segment, stable=True)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(order)) - (counts.cumsum(0) - counts)[segment[order]]  # place in its segment
        keep = rank % ((counts + VOTERS - 1) // VOTERS)[segment] == 0
        return ys[keep], xs[keep], segment[keep]

    def tone_probability(self, ys: torch.Tensor, xs: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
        """-> (N,) the probability the net gives pixels (ys, xs) of the next frame the tones `wanted` (N,): the
        probability, in the pixel's square, of every move that fetches a pixel of that tone."""
        # candidate moves ask again about the same pixels (all of them uncover a segment's place): once each
        asked, again = torch.unique((ys * self.width + xs) * len(self.sizes) + wanted, return_inverse=True)
        where, wanted = asked // len(self.sizes), asked % len(self.sizes)
        ys, xs = where // self.width, where % self.width
        fetched = self.padded_tones[self.padded_index(ys, xs)[:, None] + self.fetch[None]]  # (N, M)
        probs = self.probs[self.squares[where]]  # (N, M)
        return torch.where(fetched == wanted[:, None], probs, 0.0).sum(1).clamp(min=UNSEEN)[again]

    @functools.cached_property
    def probs(self) -> torch.Tensor:
        """(g*g, M) each square's move probabilities."""
        return self.logp.exp()

    def change_logodds(self, segments: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """segments (P,) distinct, candidates (P, C) move ids (or `vanish`) -> (P, C) the net's log-odds of the
        pixels that moving each segment by each move changes, against their staying: pixels it covers take its
        tones, pixels it uncovers the tone around it."""
        height, width, labels = self.height, self.width, self.labels
        fills = self.border_mode(self.tones, labels, segments)[0]  # (P,)
        ys, xs, segment = pixels_of(labels, segments)
        count = candidates.shape[1]
        # each pixel once per candidate move of its segment: row = pixel * C + candidate
        ys, xs, segment = (t.repeat_interleave(count) for t in (ys, xs, segment))
        choice = torch.arange(count).repeat(len(ys) // count)
        candidate = candidates[segment, choice]  # (R,)
        move = self.offsets[candidate.clamp(max=self.vanish - 1)]  # (R, 2)
        gone = candidate == self.vanish
        label = labels[ys, xs]
        # covered: where the pixel lands, if that is not its own segment now
        ty, tx = ys + move[:, 1], xs + move[:, 0]
        lands = (ty >= 0) & (ty < height) & (tx >= 0) & (tx < width)
        ty, tx = ty.clamp(0, height - 1), tx.clamp(0, width - 1)
        covered = lands & (labels[ty, tx] != label) & ~gone
        # uncovered: the pixel, if nothing of its segment lands on it
        sy, sx = ys - move[:, 1], xs - move[:, 0]
        fed = (sy >= 0) & (sy < height) & (sx >= 0) & (sx < width)
        uncovered = ~(fed & (labels[sy.clamp(0, height - 1), sx.clamp(0, width - 1)] == label)) | gone
        py = torch.cat([ty[covered], ys[uncovered]])
        px = torch.cat([tx[covered], xs[uncovered]])
        new = torch.cat([self.tones[ys[covered], xs[covered]], fills[segment[uncovered]]])
        row = torch.cat([(segment * count + choice)[covered], (segment * count + choice)[uncovered]])
        old = self.tones[py, px]
        changes = new != old
        py, px, new, row = py[changes], px[changes], new[changes], row[changes]
        # the pixels keep their tone with one probability whatever the candidate: reckoned once per pixel
        where, again = torch.unique(py * width + px, return_inverse=True)
        keep = self.tone_probability(where // width, where % width, self.tones.flatten()[where])
        odds = self.tone_probability(py, px, new).log() - keep.log()[again]
        return odds.new_zeros(len(segments) * count).index_add_(0, row, odds).view(len(segments), count)

    @staticmethod
    def border_mode(values: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """values (H, W) long, labels (H, W), ids (G,) distinct -> (G,) the commonest value on each labelled group's
        4-neighbour border (the pixels next to it with another label), and (G,) the share of the border it holds."""
        height, width = labels.shape
        ys, xs, group = pixels_of(labels, ids)
        owners, found = [], []
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            ny, nx = ys + dy, xs + dx
            inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
            ny, nx, near = ny[inside], nx[inside], group[inside]
            other = labels[ny, nx] != ids[near]
            owners.append(near[other])
            found.append(values[ny[other], nx[other]])
        owner, value = torch.cat(owners), torch.cat(found)
        span = int(value.max()) + 1 if len(value) else 1
        keys, counts = torch.unique(owner * span + value, return_counts=True)
        order = counts.argsort()  # the last written wins: the commonest
        commonest, share = torch.zeros(len(ids), dtype=torch.long), torch.zeros(len(ids))
        commonest[keys[order] // span] = keys[order] % span
        share[keys[order] // span] = counts[order].float()
        return commonest, share / torch.bincount(owner, minlength=len(ids)).clamp(min=1)

    def neighbour_pairs(self, ids: torch.Tensor) -> torch.Tensor:
        """-> (E, 2) every pair of segments that touch, corners included (pixel art joins a sprite's parts by their
        corners), one of them in `ids`, once each way."""
        ys, xs, _ = pixels_of(self.labels, ids)
        own = self.labels[ys, xs]
        index = self.padded_index(ys, xs)
        steps = (-1, 0, 1)
        found = [
            torch.stack([own, self.padded_labels[index + dy * self.padded_width + dx]], 1)
            for dy in steps
            for dx in steps
            if dy or dx
        ]
        pairs = torch.cat(found)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        pairs = torch.cat([pairs, pairs.flip(1)])
        span = len(self.sizes)
        keys = torch.unique(pairs[:, 0] * span + pairs[:, 1])
        return torch.stack([keys // span, keys % span], 1)

    # -- deciding the moves ----------------------------------------------------------------
    def moves(self) -> torch.Tensor:
        """-> (S,) a move id per segment.

        First a vote, to find which segments may move and where: the segments a square's likeliest move would
        change (where it fetches another tone than the pixel's own: the segments there and the ones it fetches
        from; in a uniform patch the net spreads its probability over many moves, the likeliest a move that changes
        nothing), of SMALLEST_SEGMENT pixels to LARGEST_SEGMENT of the frame, sum over their pixels the
        log-probability of each move in the square the pixel would land in (the net scores a square by the move
        that fills it). A segment whose vote is not "stay" is then judged on what its CANDIDATES likeliest moves,
        and vanishing, would change (change_logodds), and takes the best of them if that beats staying. The vote
        alone is fooled by uniform squares, where the net spreads its probability over the many moves that keep
        them (a wall tile, summed pixel by pixel, can favour the player's move); the pixels that would change are
        not.
        Then a sprite's parts are brought along and made to agree (bring_parts, agree_within_sprites)."""
        height, width, labels, sizes, stay = self.height, self.width, self.labels, self.sizes, self.stay
        moves = torch.full((len(sizes),), stay)
        ys, xs = torch.arange(height).repeat_interleave(width), torch.arange(width).repeat(height)
        source = self.padded_index(ys, xs) + self.fetch[self.likeliest[self.squares]]  # (H*W,)
        changed = self.padded_tones[source] != self.tones.flatten()
        asked = torch.unique(torch.cat([labels.flatten()[changed], self.padded_labels[source[changed]]]))
        asked = asked[(sizes[asked] >= SMALLEST_SEGMENT) & (sizes[asked] <= LARGEST_SEGMENT * height * width)]
        if not len(asked):
            return moves
        ys, xs, segment = self.voters(asked)
        landing = self.padded_squares[self.padded_index(ys, xs)[:, None] + self.land[None]]  # (N, M) where it lands
        votes = self.logp.flatten()[landing * len(self.offsets) + torch.arange(len(self.offsets))]  # (N, M)
        totals = votes.new_zeros(len(asked), len(self.offsets)).index_add_(0, segment, votes)  # (K, M)
        proposing = totals.argmax(1) != stay
        if not proposing.any():
            return moves
        proposers, totals = asked[proposing], totals[proposing]  # (P,), (P, M)
        totals[:, stay] = float("-inf")
        candidates = totals.topk(CANDIDATES, 1).indices  # (P, C)
        candidates = torch.cat([self.inside(proposers, candidates), torch.full((len(proposers), 1), self.vanish)], 1)
        moves = self.take_likelier(moves, proposers, candidates)
        pairs = self.neighbour_pairs((moves != stay).nonzero()[:, 0])
        moves = self.bring_parts(moves, pairs)
        return self.stop_at_solids(self.follow_holders(self.agree_within_sprites(moves, pairs), pairs))

    def bring_parts(self, moves: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """A sprite's parts in other colours (feet, a visor) touch it: a staying segment next to a larger moving one
        moves by that one's move (its largest moving neighbour's), or vanishes (a coin the player takes), where the
        net finds that likelier than staying."""
        follow = (moves[pairs[:, 0]] == self.stay) & (moves[pairs[:, 1]] != self.stay)
        follow &= self.sizes[pairs[:, 0]] < self.sizes[pairs[:, 1]]  # a part is smaller than what it is part of
        if not follow.any():
            return moves
        part, lead = pairs[follow].T
        order = self.sizes[lead].argsort()  # the last written wins: the largest
        leader = torch.full_like(moves, -1)
        leader[part[order]] = lead[order]
        parts = torch.unique(part)
        candidates = torch.stack([moves[leader[parts]], torch.full_like(parts, self.vanish)], 1)  # (P, 2)
        candidates = self.inside(parts, candidates)
        return self.take_likelier(moves, parts, candidates)

    def inside(self, segments: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """segments (P,) distinct, candidates (P, C) move ids (or `vanish`) -> the same, each move cut short where it
        would take a pixel of its segment out of the frame: the frame's edge stops a sprite, as the games' walls and
        clamps do (a player pushed against the screen's edge, a paddle against the wall), and a thing leaves the
        frame by vanishing, where the net expects what is behind it."""
        ys, xs, segment = pixels_of(self.labels, segments)
        left, right, top, bottom = (
            torch.zeros(len(segments), dtype=torch.long).scatter_reduce(0, segment, values, extreme, include_self=False)
            for values, extreme in ((xs, "amin"), (xs, "amax"), (ys, "amin"), (ys, "amax"))
        )
        move = self.offsets[candidates.clamp(max=self.vanish - 1)]  # (P, C, 2)
        dx = torch.minimum(torch.maximum(move[..., 0], -left[:, None]), self.width - 1 - right[:, None])
        dy = torch.minimum(torch.maximum(move[..., 1], -top[:, None]), self.height - 1 - bottom[:, None])
        return torch.where(candidates == self.vanish, candidates, self.move_id(dx, dy))

    def move_id(self, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
        """The ids of moves (dx, dy) within the radius, in move_table's layout: rows of dy, within them dx, each
        from -radius."""
        return (dy + self.radius) * (2 * self.radius + 1) + dx + self.radius

    def take_likelier(self, moves: torch.Tensor, segments: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """moves (S,) with each of `segments` (P,) given the best of its `candidates` (P, C) by change_logodds,
        where that beats staying."""
        gains = self.change_logodds(segments, candidates)
        best = gains.argmax(1)
        wins = gains.gather(1, best[:, None])[:, 0] > 0
        moves = moves.clone()
        moves[segments[wins]] = candidates[wins, best[wins]]
        return moves

    def agree_within_sprites(self, moves: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Moving segments that touch (a sprite's body and feet) take one move: of their moves, the one the net
        finds likeliest summed over them all, unless a segment's own is GROUP_MARGIN nats likelier for it (another
        object that touches it). Chosen one by one, a walking sprite's body steps 2 px and its foot 3 px, and they
        part."""
        moving = (moves != self.stay) & (moves != self.vanish)
        both = moving[pairs[:, 0]] & moving[pairs[:, 1]]
        if not both.any():
            return moves
        ids = torch.unique(pairs[both])  # (P,) sorted
        ends = torch.searchsorted(ids, pairs[both]).numpy()  # (E, 2)
        graph = coo_matrix((np.ones(len(ends), dtype=bool), (ends[:, 0], ends[:, 1])), (len(ids),) * 2)
        group = torch.from_numpy(connected_components(graph, directed=False)[1]).long()  # (P,)
        # each group's candidate moves: its members' moves, listed once
        total = len(self.offsets)
        keys = torch.unique(group * total + moves[ids])
        owner, choice = keys // total, keys % total
        rank = torch.arange(len(keys)) - torch.searchsorted(owner, owner)  # each move's place in its group's list
        options = torch.full((int(group.max()) + 1, int(rank.max()) + 1), -1)
        options[owner, rank] = choice
        options = torch.where(options < 0, options[:, :1], options)  # (G, C) padded with the first
        candidates = self.inside(ids, options[group])  # (P, C)
        gains = self.change_logodds(ids, candidates)  # (P, C)
        shared = gains.new_zeros(options.shape).index_add_(0, group, gains).argmax(1)[group]  # (P,) its column
        own = (candidates == moves[ids][:, None]).float().argmax(1)
        keep = gains.gather(1, own[:, None])[:, 0] - gains.gather(1, shared[:, None])[:, 0] > GROUP_MARGIN
        moves = moves.clone()
        moves[ids[~keep]] = candidates[~keep, shared[~keep]]
        return moves

    def follow_holders(self, moves: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """A segment that a larger thing (not the background) encloses, holding ENCLOSED of its border, is part of
        it and does what it does: an eye or a pupil moves with its face, a brick stays in its mortar. The net's
        moves for them, judged apart, differ by a pixel, or the part's squares expect the face's colour: a sprite
        whose eye vanished, or whose pupil stayed behind, grew a hole that ate it within ten frames. Judged over
        `pairs` (neighbour_pairs of the segments the net moved on their own): a part counts where it touches one
        of those or is one; its holder, once found, passes on whatever it ends up doing."""
        background = self.sizes.argmax()
        ids = torch.unique(pairs.flatten())
        ids = ids[ids != background]
        if not len(ids):
            return moves
        holder, share = self.border_mode(self.labels, self.labels, ids)
        held = (share >= ENCLOSED) & (self.sizes[holder] > self.sizes[ids])
        held &= self.segment_tone[holder] != self.segment_tone[background]
        parts, holders = ids[held], holder[held]
        moves = moves.clone()
        for _ in range(len(parts)):  # a holder is larger than its part: chains (pupil, eye, face) end
            if torch.equal(moves[parts], moves[holders]):
                break
            moves[parts] = moves[holders]
        return moves

    def stop_at_solids(self, moves: torch.Tensor) -> torch.Tensor:
        """Things in a 2D game do not pass into one another: a player pressing into a wall stays against it, a paddle
        stops at the side wall, a ball falling onto the paddle stops on it. The net, sure of the key or of the
        ball's flight, moves them in anyway (a maze player pushed into the wall, a paddle torn on the wall it
        pressed against, a ball sunk into the paddle), and what lands inside a thing is cut into pieces by the next
        frame's segments. So each moving region (moving pixels that touch, corners included: a sprite's parts) goes
        the largest share of its segments' moves that lands none of its pixels on a solid. A solid is a staying
        segment, not of the background's tone nor of any tone of the region (one enemy of a formation passes
        another), of SMALLEST_SEGMENT pixels to LARGEST_SEGMENT of the frame, that is either of a colour covering
        SOLID_AREA of the frame (walls and ground: many tiles of a few colours) or at least as large as the
        region's largest segment (a ball stops at the paddle and at a brick, while a player walks over a coin or a
        gem to take it). What vanishes is not in the way."""
        moving = (moves != self.stay) & (moves != self.vanish)
        if not moving.any():
            return moves
        frame = self.height * self.width
        background = self.segment_tone[self.sizes.argmax()]
        area = torch.zeros_like(self.sizes).index_add_(0, self.segment_tone, self.sizes)[self.segment_tone]  # (S,)
        solid = (moves == self.stay) & (self.segment_tone != background) & (self.sizes >= SMALLEST_SEGMENT)
        solid &= self.sizes <= LARGEST_SEGMENT * frame
        if not solid.any():
            return moves
        pixels = moving[self.labels]
        regions, count = ndimage.label(pixels.numpy(), structure=np.ones((3, 3)))
        ys, xs = pixels.nonzero(as_tuple=True)
        region = torch.from_numpy(regions).long()[ys, xs] - 1  # (N,)
        segment = self.labels[ys, xs]
        largest = torch.zeros(count, dtype=torch.long).scatter_reduce(0, region, self.sizes[segment], "amax")
        own_tones = torch.zeros(count, len(self.sizes), dtype=torch.bool)
        own_tones[region, self.segment_tone[segment]] = True
        move = self.offsets[moves[segment]]  # (N, 2)
        steps = int(move.abs().max())
        reach = torch.zeros(count, dtype=torch.long)  # per region the share of its moves it goes, in 1/steps
        free = torch.zeros(count, dtype=torch.bool)
        for share in range(steps, 0, -1):
            shifted = torch.round(move.float() * share / steps).long()
            ty, tx = ys + shifted[:, 1], xs + shifted[:, 0]
            inside = (ty >= 0) & (ty < self.height) & (tx >= 0) & (tx < self.width)
            under = self.labels[ty.clamp(0, self.height - 1), tx.clamp(0, self.width - 1)]  # (N,) landed on
            blocked = inside & solid[under] & ~own_tones[region, self.segment_tone[under]]
            blocked &= (area[under] >= SOLID_AREA * frame) | (self.sizes[under] >= largest[region])
            clear = torch.ones(count, dtype=torch.bool).index_put_((region[blocked],), torch.tensor(False))
            reach[clear & ~free] = share
            free |= clear
        if bool((reach == steps).all()):
            return moves
        shortened = torch.round(move.float() * (reach[region] / steps)[:, None]).long()  # (N, 2)
        moves = moves.clone()
        moves[segment] = self.move_id(shortened[:, 0], shortened[:, 1])  # a segment's pixels share its region
        return moves

    # -- drawing -----------------------------------------------------------------------------
    def draw(self, image: torch.Tensor, moves: torch.Tensor) -> torch.Tensor:
        """image (H, W, 3), moves (S,) a move id per segment -> the image with each moving segment lifted (its
        place filled with the commonest colour around the moving region it belongs to: a many-coloured sprite's
        parts are lifted together) and put down moved; where two land on one pixel the smaller segment shows (a
        sprite's small parts stay on top of its body)."""
        height, width, labels = self.height, self.width, self.labels
        moving = moves[labels] != self.stay  # (H, W)
        regions = torch.from_numpy(ndimage.label(moving.numpy())[0]).long()
        codes = (image[..., 0].long() << 16) | (image[..., 1].long() << 8) | image[..., 2].long()  # (H, W)
        fills = self.border_mode(codes, regions, torch.arange(1, int(regions.max()) + 1))[0]  # (R,)
        fills = torch.stack([fills >> 16, (fills >> 8) & 255, fills & 255], 1).to(image.dtype)  # (R, 3)
        out = image.clone()
        out[moving] = fills[regions[moving] - 1]
        ys, xs = moving.nonzero(as_tuple=True)
        move = moves[labels[ys, xs]]
        ys, xs, move = ys[move != self.vanish], xs[move != self.vanish], self.offsets[move[move != self.vanish]]
        ty, tx = ys + move[:, 1], xs + move[:, 0]
        lands = (ty >= 0) & (ty < height) & (tx >= 0) & (tx < width)
        ys, xs, ty, tx = ys[lands], xs[lands], ty[lands], tx[lands]
        if not len(ys):  # all of it moved past the frame's edge
            return out
        target = ty * width + tx
        rank = self.sizes[labels[ys, xs]] * (height * width) + ys * width + xs
        winner = torch.full((height * width,), int(rank.max()) + 1).scatter_reduce(0, target, rank, "amin")
        shown = winner[target] == rank
        out[ty[shown], tx[shown]] = image[ys[shown], xs[shown]]
        return out


@functools.lru_cache(maxsize=4)
def layout(height: int, width: int, square: int, radius: int) -> tuple[torch.Tensor, ...]:
    """-> (H*W,) each pixel's square (raster order), the same padded by `radius` (past the edge, the edge's), and
    (H+2r)*(W+2r) the pixel each padded place repeats."""
    squares = torch.arange((height // square) * (width // square)).view(height // square, width // square)
    squares = squares.repeat_interleave(square, 0).repeat_interleave(square, 1).flatten()
    rows = torch.arange(-radius, height + radius).clamp(0, height - 1)
    cols = torch.arange(-radius, width + radius).clamp(0, width - 1)
    padding = (rows[:, None] * width + cols[None]).flatten()
    return squares, squares[padding], padding


def pixels_of(labels: torch.Tensor, ids: torch.Tensor):
    """labels (H, W), ids (G,) distinct -> ys, xs (N,) the pixels labelled one of ids, and which (N,) 0..G-1."""
    which = torch.full((int(labels.max()) + 1,), -1)
    which[ids] = torch.arange(len(ids))
    group = which[labels]  # (H, W)
    ys, xs = (group >= 0).nonzero(as_tuple=True)
    return ys, xs, group[ys, xs]


def draw_by_objects(
    frames: torch.Tensor, logp: torch.Tensor, likeliest: torch.Tensor, offsets: torch.Tensor, stay: int
):
    """frames (B, 3, H, W) in [-1, 1] the previous frames, logp (B, g*g, M) each square's move log-probabilities
    (squares in raster order), likeliest (B, g*g) their argmax -> the next frames (B, 3, H, W), each moved segment
    by segment."""
    out = []
    for frame, frame_logp, frame_likeliest in zip(frames, logp.float().cpu(), likeliest.cpu()):
        if not (frame_likeliest != stay).any():
            out.append(frame)
            continue
        image = ((frame.float().clamp(-1, 1) + 1) * 127.5).round().short().permute(1, 2, 0).cpu()  # (H, W, 3)
        scene = Scene(image, frame_logp, offsets.cpu(), stay, frame_likeliest)
        moves = scene.moves()
        if not (moves != stay).any():
            out.append(frame)
            continue
        moved = scene.draw(image, moves).permute(2, 0, 1)  # (3, H, W)
        out.append((moved.to(frames.dtype) / 127.5 - 1).to(frames.device))
    return torch.stack(out)
