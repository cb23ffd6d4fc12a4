"""Play by objects (core/frame_objects.py): the previous frame's colour segments each move whole, by the move the
motion net finds likelier than staying for the pixels it would change."""

from __future__ import annotations

import torch

from core.config import FrameDynamicsConfig
from core.frame_motion import FrameMotion, move_table
from core.frame_objects import Scene, colour_segments

MOTION = {"radius": 4, "channels": (8, 16), "mid_blocks": 1, "hidden": 16, "redraw": False}
BACKGROUND, WALL, BODY, EYE, FOOT = (20, 30, 90), (200, 120, 40), (240, 220, 60), (250, 250, 250), (230, 90, 30)


def scene_frame(noise: int = 0) -> torch.Tensor:
    """(1, 3, 32, 32) in [-1, 1]: a sprite (a body, an eye inside it, a foot touching it below) above a wall, on a
    background; with `noise`, every pixel's colour off by up to that much (a video's compression noise)."""
    image = torch.tensor(BACKGROUND).expand(32, 32, 3).clone()
    image[20:28, 8:20] = torch.tensor(WALL)  # 96 px: a segment that may move (under an eighth of the frame)
    image[6:12, 6:12] = torch.tensor(BODY)
    image[8:10, 8:10] = torch.tensor(EYE)  # all around it the body
    image[12:14, 6:8] = torch.tensor(FOOT)  # touches the body and the background
    if noise:
        image = image + torch.randint(-noise, noise + 1, image.shape, generator=torch.Generator().manual_seed(0))
    return (image.clamp(0, 255).permute(2, 0, 1)[None].float() / 127.5) - 1


def net_opinion(motion: FrameMotion) -> torch.Tensor:
    """(1, M + 1, 8, 8) logits of a net that sees the sprite step 3 px right (its foot's square unsure between 2
    and 3 px: a sprite moving 2.5 px a frame) and, everywhere else, spreads each square over the many moves that
    in a uniform patch make the same pixels, the likeliest single one a move, not "stay" (a set loss learns that):
    summed over the wall's pixels, a move of the wall wins the vote."""
    table = move_table(4).tolist()
    near = [table.index([dx, dy]) for dx, dy in table if abs(dx) <= 2 and abs(dy) <= 2]
    logits = torch.full((1, motion.redraw + 1, 8, 8), -10.0)
    logits[:, near] = 1.2
    logits[:, motion.stay] = 1.0
    right3, right2 = table.index([3, 0]), table.index([2, 0])
    logits[0, :, 1:4, 1:4] = -10.0
    logits[0, right3, 1:4, 1:4] = 6.0  # the body's squares, where it is and where it goes
    logits[0, right2, 3, 1:3] = 6.5  # the foot's: 2 px a little likelier than 3
    logits[0, right3, 3, 1:3] = 6.0
    return logits


def test_a_sprite_moves_whole_and_the_wall_beside_it_stays():
    motion = FrameMotion(
        FrameDynamicsConfig(resolution=8, channels=(8, 16), action_dim=8, motion={**MOTION, "decode": "objects"})
    )
    frame, logits = scene_frame(), net_opinion(motion)
    prediction = motion.predict_moves(logits, frame, lambda: None)
    drawn = motion.draw(prediction, frame, upsampler=None)
    expected = frame.clone()
    expected[0, :, 6:14, 6:12] = frame[0, :, 0:1, 0:1]  # lifted: the background fills where the sprite was
    expected[0, :, 6:14, 9:15] = frame[0, :, 6:14, 6:12]  # and put down 3 px right, eye and foot with it
    expected[0, :, 12:14, 11:15] = frame[0, :, 0:1, 0:1]  # beside the foot, the background as it was
    assert torch.equal(drawn, expected)
    # chosen square by square ("sprite"), the wall's squares take moves that tear its top and bottom edges
    motion.config.decode = "sprite"
    torn = motion.warp(frame, motion.choose(logits, frame))
    assert not torch.equal(torn[0, :, 16:32], frame[0, :, 16:32])


def test_a_video_s_noise_keeps_a_sprite_one_segment_that_moves_whole():
    frame = scene_frame(noise=6)
    image = ((frame[0] + 1) * 127.5).round().short().permute(1, 2, 0)
    labels = torch.from_numpy(colour_segments(image.byte().numpy()))
    assert len(torch.unique(labels[6:12, 6:12])) == 2  # the body and its eye, each whole under the noise
    assert len(torch.unique(labels[20:28, 8:20])) == 1
    motion = FrameMotion(
        FrameDynamicsConfig(resolution=8, channels=(8, 16), action_dim=8, motion={**MOTION, "decode": "objects"})
    )
    logits = net_opinion(motion)
    logp = logits[0, : motion.redraw].log_softmax(0).flatten(1).T  # (squares, moves)
    scene = Scene(image, logp, motion.offsets, motion.stay)
    moves = scene.moves()
    moved = {int(moves[label]) for label in torch.unique(labels[6:14, 6:12]) if scene.sizes[label] < 100}
    assert moved == {move_table(4).tolist().index([3, 0])}  # body, eye and foot: one move
    assert moves[labels[24, 12]] == motion.stay


def test_a_frame_the_net_keeps_still_is_returned_as_it_is():
    motion = FrameMotion(
        FrameDynamicsConfig(resolution=8, channels=(8, 16), action_dim=8, motion={**MOTION, "decode": "objects"})
    )
    frame = scene_frame()
    logits = torch.full((1, motion.redraw + 1, 8, 8), -10.0)
    logits[:, motion.stay] = 3.0
    prediction = motion.predict_moves(logits, frame, lambda: None)
    assert torch.equal(motion.draw(prediction, frame, upsampler=None), frame)


def test_a_sprite_moved_past_the_edge_leaves_the_frame():
    motion = FrameMotion(
        FrameDynamicsConfig(resolution=8, channels=(8, 16), action_dim=8, motion={**MOTION, "decode": "objects"})
    )
    frame = torch.full((1, 3, 32, 32), -1.0)
    frame[0, :, 10:14, 30:32] = 1.0  # a 2 px wide sprite at the right edge
    table = move_table(4).tolist()
    logits = torch.full((1, motion.redraw + 1, 8, 8), -10.0)
    logits[:, motion.stay] = 3.0
    logits[0, :, 2:4, 7] = -10.0
    logits[0, table.index([3, 0]), 2:4, 7] = 6.0  # its squares fetch the black 3 px left of them: it left
    prediction = motion.predict_moves(logits, frame, lambda: None)
    assert (motion.draw(prediction, frame, upsampler=None) == -1).all()


def test_a_segment_the_net_expects_the_background_in_vanishes():
    motion = FrameMotion(
        FrameDynamicsConfig(resolution=8, channels=(8, 16), action_dim=8, motion={**MOTION, "decode": "objects"})
    )
    frame = scene_frame()
    table = move_table(4).tolist()
    logits = torch.full((1, motion.redraw + 1, 8, 8), -10.0)
    logits[:, motion.stay] = 3.0
    fetch_background = [table.index([dx, dy]) for dx, dy in table if dy <= -3]  # from 3-4 px below the sprite
    logits[0, :, 1:3, 1:3] = -10.0  # the body's squares (rows 4-11, columns 4-11), but not the foot's
    logits[0, fetch_background, 1:3, 1:3] = 4.0
    drawn = motion.draw(motion.predict_moves(logits, frame, lambda: None), frame, upsampler=None)
    background = frame[0, :, 0, 0][:, None, None]
    assert (drawn[0, :, 6:12, 6:12] == background).all()  # the body and the eye in it are gone
    assert torch.equal(drawn[0, :, 12:32], frame[0, :, 12:32])  # the foot, whose squares stay, and the wall stay


def test_the_frame_s_edge_stops_a_sprite_pushed_against_it():
    """The net moves a sprite 3 px left while it stands 1 px from the left edge (a player walking into the screen's
    edge): it stops at the edge, whole, rather than walking out of the frame (that is for vanishing)."""
    motion = FrameMotion(
        FrameDynamicsConfig(resolution=8, channels=(8, 16), action_dim=8, motion={**MOTION, "decode": "objects"})
    )
    frame = torch.full((1, 3, 32, 32), -1.0)
    frame[0, :, 10:16, 1:7] = 1.0  # a 6x6 sprite 1 px from the left edge
    table = move_table(4).tolist()
    logits = torch.full((1, motion.redraw + 1, 8, 8), -10.0)
    logits[:, motion.stay] = 3.0
    logits[0, :, 2:4, 0:2] = -10.0
    logits[0, table.index([-3, 0]), 2:4, 0:2] = 6.0  # its squares fetch from 3 px right: it steps 3 px left
    drawn = motion.draw(motion.predict_moves(logits, frame, lambda: None), frame, upsampler=None)
    expected = torch.full_like(frame, -1.0)
    expected[0, :, 10:16, 0:6] = 1.0  # 1 px left, against the edge, all 36 pixels
    assert torch.equal(drawn, expected)


def test_a_part_a_thing_encloses_does_what_the_thing_does():
    """follow_holders: an eye inside a face moves with the face whatever was chosen for it (left to vanish, it
    leaves a hole that grows); a foot, mostly bordered by the background, keeps its own move; the background holds
    nothing (a coin in the sky may vanish alone)."""
    frame = scene_frame()
    image = ((frame[0] + 1) * 127.5).round().short().permute(1, 2, 0)
    table = move_table(4).tolist()
    stay, right3, right2 = table.index([0, 0]), table.index([3, 0]), table.index([2, 0])
    scene = Scene(image, torch.zeros(64, len(table)).log_softmax(1), torch.tensor(table), stay)
    body, eye, foot, wall = (int(scene.labels[y, x]) for y, x in ((6, 6), (8, 8), (12, 6), (24, 12)))
    moves = torch.full((len(scene.sizes),), stay)
    moves[body], moves[eye], moves[foot], moves[wall] = right3, scene.vanish, right2, scene.vanish
    followed = scene.follow_holders(moves, scene.neighbour_pairs(torch.tensor([body, foot, wall])))
    assert followed[eye] == right3  # with the face, not a hole in it
    assert followed[foot] == right2 and followed[wall] == scene.vanish and followed[body] == right3


def test_a_sprite_does_not_carry_off_a_brick_it_touches():
    """A broken platform's brick that the player's head wraps on three sides (5 of its 8 border pixels, the rest
    mortar) is not enclosed by the player: it stays when the player moves (at half the border, the player carried
    such bricks off as it rose through a platform)."""
    image = torch.tensor(BACKGROUND).expand(32, 32, 3).clone()
    image[4:10, 4:28] = torch.tensor((22, 16, 52))  # the platform's mortar
    image[10:20, 10:18] = torch.tensor(BODY)  # the player, its head against the platform
    image[10, 14] = torch.tensor((22, 16, 52))  # a mortar pixel beside the brick's top row
    image[10:12, 12:14] = torch.tensor((50, 36, 117))  # the brick: mortar above, the player left, right and below
    table = move_table(4).tolist()
    stay, left3 = table.index([0, 0]), table.index([-3, 0])
    scene = Scene(image, torch.zeros(64, len(table)).log_softmax(1), torch.tensor(table), stay)
    player, brick = int(scene.labels[15, 14]), int(scene.labels[10, 12])
    assert scene.border_mode(scene.labels, scene.labels, torch.tensor([brick]))[1].item() == 5 / 8
    moves = torch.full((len(scene.sizes),), stay)
    moves[player] = left3
    followed = scene.follow_holders(moves, scene.neighbour_pairs(torch.tensor([player])))
    assert followed[brick] == stay and followed[player] == left3


def test_a_sprite_moved_into_a_post_stops_against_it_and_one_moved_away_goes_on():
    frame = scene_frame()
    frame[0, :, 2:16, 14:16] = torch.tensor(WALL)[:, None, None] / 127.5 - 1  # a post 2 px past the sprite's edge
    image = ((frame[0] + 1) * 127.5).round().short().permute(1, 2, 0)
    motion = FrameMotion(
        FrameDynamicsConfig(resolution=8, channels=(8, 16), action_dim=8, motion={**MOTION, "decode": "objects"})
    )
    logp = net_opinion(motion)[0, : motion.redraw].log_softmax(0).flatten(1).T  # (squares, moves)
    scene = Scene(image, logp, motion.offsets, motion.stay)
    table = move_table(4).tolist()
    sprite = torch.unique(scene.labels[6:14, 6:12])
    sprite = sprite[scene.sizes[sprite] < 100]  # body, eye, foot: not the background around them
    for step, goes in ((3, 2), (-3, -3), (2, 2)):
        moves = torch.full_like(scene.sizes, motion.stay)
        moves[sprite] = table.index([step, 0])
        moves = scene.stop_at_solids(moves)
        # 3 px right would land the body on the post: all its parts go 2, and the post stays; left, or 2 px right,
        # nothing is in the way
        assert set(moves[sprite].tolist()) == {table.index([goes, 0])}
        assert moves[scene.labels[2, 14]] == motion.stay
    moves[sprite] = table.index([3, 0])
    drawn = scene.draw(image, scene.stop_at_solids(moves))
    assert torch.equal(drawn[6:14, 8:14], image[6:14, 6:12]) and torch.equal(drawn[:, 14:16], image[:, 14:16])


def test_a_ball_stops_at_a_larger_thing_while_a_player_walks_over_a_coin_and_one_of_a_kind_passes_another():
    image = torch.tensor(BACKGROUND).expand(64, 64, 3).clone().short()
    image[10:14, 20:24] = torch.tensor((250, 200, 0))  # a coin, smaller than the player walking onto it
    image[8:14, 12:18] = torch.tensor(BODY)  # the player
    image[30:32, 10:12] = torch.tensor(EYE)  # a ball, smaller than the block it flies at
    image[28:34, 13:19] = torch.tensor(WALL)
    image[40:46, 4:10] = torch.tensor(BODY)  # one of a kind, moving onto its twin
    image[40:46, 12:18] = torch.tensor(BODY)
    motion = FrameMotion(FrameDynamicsConfig(resolution=16, channels=(8, 16), action_dim=8, motion=MOTION))
    scene = Scene(image, torch.zeros(16 * 16, motion.redraw), motion.offsets, motion.stay)
    right = {step: move_table(4).tolist().index([step, 0]) for step in range(5)}
    player, ball, mover = (int(scene.labels[y, x]) for y, x in ((8, 12), (30, 10), (40, 4)))
    moves = torch.full_like(scene.sizes, motion.stay)
    moves[[player, ball, mover]] = right[4]
    moves = scene.stop_at_solids(moves)
    # 4 px would sink the ball 3 px into the block: it goes 1, against it; the player and the twin go on
    assert (moves[player], moves[ball], moves[mover]) == (right[4], right[1], right[4])
