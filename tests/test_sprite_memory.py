"""The sprite memory (core/sprite_memory.py): what keys make appear, found in recorded play, put down in play where
the motion net expects something new, and lifted again when the net no longer expects it to stay."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core.actions import ACTION_IDS, NUM_ACTIONS
from core.cli import main
from core.config import FrameDynamicsConfig
from core.frame_motion import FrameMotion, move_table
from core.sprite_memory import SpriteMemory, collect_sprites, new_sprites
from core.world_model import WorldModel
from tests.test_frames_family import frames_config

BACKGROUND, LIGHT, PINK, BLOCK = (20, 30, 90), (255, 229, 255), (255, 178, 230), (200, 120, 40)
FIRE, NOOP, LEFT = ACTION_IDS["FIRE"], ACTION_IDS["NOOP"], ACTION_IDS["LEFT"]
MOTION = {"radius": 4, "channels": (8, 16), "mid_blocks": 1, "hidden": 16, "redraw": False, "decode": "objects"}


def sword() -> np.ndarray:
    """(6, 6, 3) a diamond outline drawn in two tones in a checker of 2x2 blocks (as the maze's sword): its blocks
    touch only by their corners, each one a colour segment of its own; (0, 0, 0) where it is not."""
    image = np.zeros((6, 6, 3), dtype=np.uint8)
    for row, col, tone in ((0, 2, LIGHT), (2, 0, PINK), (2, 4, PINK), (4, 2, LIGHT)):
        image[row : row + 2, col : col + 2] = tone
    return image


def frame(sword_at=None, block_at=None) -> np.ndarray:
    """(32, 32, 3) uint8 the background, with the sword's top-left corner at `sword_at` and a 4x4 block at
    `block_at`."""
    image = np.empty((32, 32, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    if sword_at is not None:
        row, col = sword_at
        drawn = sword()
        where = drawn.any(-1)
        image[row : row + 6, col : col + 6][where] = drawn[where]
    if block_at is not None:
        row, col = block_at
        image[row : row + 4, col : col + 4] = BLOCK
    return image


def to_model(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1


def test_a_sprite_that_appears_is_found_whole_and_one_that_moved_is_not():
    found = new_sprites(frame(block_at=(20, 20)), frame(sword_at=(4, 6), block_at=(20, 22)), radius=4, size=8)
    assert len(found) == 1  # the block moved 2 px: some move of the last frame makes it
    _, patch = found[0]
    assert (patch[..., 3] > 0).sum() == 16  # the four checker blocks, taken as one sprite
    assert np.array_equal(patch[:6, :6, :3][patch[:6, :6, 3] > 0], sword()[sword().any(-1)])


def test_the_memory_keeps_what_a_key_makes_appear_and_not_what_appears_whatever_the_keys():
    keys = [FIRE, NOOP, LEFT, ACTION_IDS["RIGHT"]] * 20
    # the sword after each FIRE (20 of 80 presses); the block in half the frames, whatever was pressed
    transitions = [
        (frame(), frame(sword_at=(4, 4) if key == FIRE else None, block_at=(20, 20) if t % 8 < 4 else None), key)
        for t, key in enumerate(keys)
    ]
    bank, lifts, distinct = collect_sprites(transitions, count=3, size=8, radius=4)
    assert distinct == 2
    assert (bank[0, ..., 3] > 0).sum() == 16 and not bank[1:, ..., 3].any()  # the sword only; empty slots
    assert lifts[0, FIRE] > 1 and lifts[0, NOOP] == lifts[0, LEFT] == 0  # likelier after FIRE, never without it
    assert lifts.shape == (3, NUM_ACTIONS)


def memory_with_sword_and_block() -> SpriteMemory:
    """A memory of the sword (made to appear by FIRE) and the block (by LEFT), size 8."""
    memory = SpriteMemory(2, 8)
    for slot, image in enumerate((frame(sword_at=(0, 0)), frame(block_at=(0, 0)))):
        shown = (image[:8, :8] != BACKGROUND).any(-1)
        memory.patches[slot, ..., :3] = torch.from_numpy(image[:8, :8])
        memory.patches[slot, ..., 3] = torch.from_numpy(shown.astype(np.uint8) * 255)
    memory.keys[0, FIRE] = memory.keys[1, LEFT] = 4.0
    return memory


def test_play_puts_down_the_sprite_the_key_makes_appear_where_the_small_frame_shows_it():
    memory = memory_with_sword_and_block()
    now, wanted = to_model(frame()), to_model(frame(sword_at=(13, 10)))
    small = F.avg_pool2d(wanted, 4)  # the next frame's small frame, as a perfect dynamics would draw it
    appear = torch.zeros(1, 8, 8, dtype=torch.bool)
    appear[0, 3:5, 2:4] = True  # the net expects something new about there
    placed = memory.choose(now, small, appear, torch.tensor([FIRE]))
    assert placed.sprite[0].tolist() == [0, 13, 10]
    assert torch.equal(memory.put(now, placed), wanted)
    assert torch.equal(memory.lift(wanted, placed), now)  # lifted, the pixels it covered come back
    # NOOP makes nothing appear, and the block (LEFT's) does not look like what the small frame shows
    assert memory.choose(now, small, appear, torch.tensor([NOOP])).sprite[0, 0] == -1
    assert memory.choose(now, F.avg_pool2d(now, 4), appear, torch.tensor([FIRE])).sprite[0, 0] == -1


def test_a_sprite_put_down_stays_while_the_net_expects_it_and_is_lifted_when_it_does_not():
    config = FrameDynamicsConfig(
        resolution=8, channels=(8, 16), action_dim=8, motion={**MOTION, "sprites": 2, "sprite_size": 8}
    )
    motion = FrameMotion(config)
    memory = memory_with_sword_and_block()
    motion.sprites.load_state_dict(memory.state_dict())
    empty, shown = to_model(frame()), to_model(frame(sword_at=(13, 10)))
    still = torch.full((1, motion.redraw + 1, 8, 8), -10.0)
    still[:, motion.stay] = 10.0  # every square stays
    appears = still.clone()
    appears[0, motion.redraw, 3:5, 2:4] = 20.0  # ... but where the sword comes
    fire = torch.tensor([FIRE])

    first = motion.predict_moves(appears, empty, lambda: F.avg_pool2d(shown, 4), None, fire)
    assert torch.equal(motion.draw(first, empty, upsampler=None), shown)
    held = motion.predict_moves(still, shown, lambda: None, first.placed, fire)
    assert held.lift.sprite[0, 0] == -1 and held.placed.sprite[0].tolist() == [0, 13, 10]
    assert torch.equal(motion.draw(held, shown, upsampler=None), shown)  # kept while the net expects it
    # let go: the net expects the sword's squares to take the background from 4 px to the left
    let_go = still.clone()
    let_go[0, motion.stay, 3:5, 2:4] = -10.0
    let_go[0, move_table(4).tolist().index([4, 0]), 3:5, 2:4] = 10.0
    gone = motion.predict_moves(let_go, shown, lambda: None, held.placed, torch.tensor([NOOP]))
    assert gone.placed.sprite[0, 0] == -1
    assert torch.equal(motion.draw(gone, shown, upsampler=None), empty)


def test_the_sprites_command_gives_a_model_its_memory_and_it_loads_back(tmp_path):
    from core.data.shards import Sample, ShardWriter

    model_dir = tmp_path / "model"
    WorldModel(frames_config(motion=MOTION)).save_pretrained(model_dir)
    keys = [FIRE, NOOP, LEFT, ACTION_IDS["RIGHT"]] * 16
    frames = [frame(block_at=(20, 20))]
    for key in keys:  # the sword shows in the frame after each FIRE
        frames.append(frame(sword_at=(4, 4) if key == FIRE else None, block_at=(20, 20)))
    images = np.zeros((len(frames), 256, 256, 3), dtype=np.uint8)
    images[:] = BACKGROUND
    images[:, 100:132, 100:132] = np.stack(frames)
    writer = ShardWriter(tmp_path / "shards")
    meta = {"split": "train", "game": "toy", "seed": 0, "start_frame": 0}
    state = np.zeros((len(images), 1), np.float32)
    writer.write(Sample(images, np.array(keys + [NOOP], np.uint8), state, meta))
    writer.close()
    out, data = tmp_path / "remembering", str(tmp_path / "shards")
    assert main(["sprites", str(model_dir), "--data", data, "--out", str(out), "--count", "2", "--no-progress"]) == 0
    model = WorldModel.from_pretrained(out)
    assert model.config.dynamics.motion.sprites == 2
    memory = model.dynamics.motion.sprites
    assert memory.keys[0, FIRE] > 1 and (memory.patches[0, ..., 3] > 0).sum() == 16
    assert main(["sprites", str(model_dir), "--data", data, "--out", str(out), "--no-progress"]) == 2  # exists
    assert main(["sprites", str(model_dir), "--data", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 2
    assert main(["sprites", str(model_dir), "--data", data, "--out", str(tmp_path / "x"), "--appear", "1.5"]) == 2
    assert not (tmp_path / "x").exists()
