"""The motion net (core/frame_motion.py): moves of the previous frame's squares, their targets, learning to follow
the keys, play that calls the denoiser and upsampler only to redraw, and its training in the frames stage."""

from __future__ import annotations

import json

import pytest
import torch

from core.config import ConfigError, FrameDynamicsConfig, WorldModelConfig
from core.frame_motion import (
    SCORES_LAYER,
    FrameMotion,
    FramePrediction,
    acceptable_moves,
    far_only,
    move_costs,
    move_table,
    moved_squares,
    moves_loss,
    widen_moves,
)
from core.world_model import WorldModel
from tests.test_frames_family import frames_config, frames_run

MOTION = {"radius": 4, "channels": (8, 16), "mid_blocks": 1, "hidden": 16}


def motion_config() -> WorldModelConfig:
    return frames_config(motion=MOTION)


def test_a_move_takes_each_square_from_where_it_says_and_the_edge_past_the_border():
    motion = FrameMotion(FrameDynamicsConfig(resolution=8, channels=(8, 16), action_dim=8, motion=MOTION))
    frames = torch.arange(32 * 32, dtype=torch.float).view(1, 1, 32, 32).expand(1, 3, 32, 32)
    move = next(i for i, (dx, dy) in enumerate(move_table(4).tolist()) if (dx, dy) == (2, -1))
    moves = torch.full((1, 8, 8), motion.stay)
    moves[0, 2, 3] = move  # the square of rows 8-11, columns 12-15
    out = motion.warp(frames, moves)
    assert torch.equal(out[0, 0, 8:12, 12:16], frames[0, 0, 9:13, 10:14])  # out[y, x] = in[y + 1, x - 2]
    out[0, :, 8:12, 12:16] = frames[0, :, 8:12, 12:16]
    assert torch.equal(out, frames)  # every other square stayed
    moves[0, 7, 0] = move  # the bottom-left square: rows past the bottom and columns past the left repeat the edge
    corner = motion.warp(frames, moves)[0, 0, 28:32, 0:4]
    assert torch.equal(corner[-1], frames[0, 0, 31, torch.tensor([0, 0, 0, 1])])


def test_the_targets_are_the_moves_that_reproduce_a_square_or_redraw():
    prev, nxt = torch.full((2, 1, 3, 32, 32), -1.0)
    prev[0, :, 8:16, 4:12] = 1  # a sprite that moves 4 px right
    nxt[0, :, 8:16, 8:16] = 1
    nxt[0, 0, 24:28, 24:28] = 1  # something new (red): no move of the last frame makes it
    ok = acceptable_moves(prev, nxt, radius=4, square=4, tolerance=0.01, redraw_cost=0.1)  # (1, 82, 8, 8)
    right = move_table(4).tolist().index([4, 0])
    redraw, stay = ok.shape[1] - 1, (ok.shape[1] - 1) // 2
    assert ok[0, right, 2, 3] and not ok[0, stay, 2, 3]  # the sprite's new right half came 4 px from the left
    assert ok[0, redraw, 6, 6] and ok[0, :redraw, 6, 6].sum() == 0
    assert ok[0, stay, 0, 0] and not ok[0, redraw, 0, 0]  # the still background stays (and accepts other moves)
    logits = torch.zeros(1, ok.shape[1], 8, 8)
    logits[:, right] = 5.0
    assert moves_loss(logits, ok, 20.0) < moves_loss(torch.zeros_like(logits), ok, 20.0)


def test_a_jump_beyond_the_old_reach_is_far_and_weighs_more_when_asked():
    prev, nxt = torch.full((2, 1, 3, 48, 48), -1.0)
    prev[0, :, 24:32, 4:12] = 1  # one sprite jumps 8 px up, another walks 4 px right
    nxt[0, :, 16:24, 4:12] = 1
    prev[0, 1, 4:8, 28:36] = 1
    nxt[0, 1, 4:8, 32:40] = 1
    ok = acceptable_moves(prev, nxt, radius=10, square=4, tolerance=0.01, redraw_cost=0.1)
    # the top of the jumper's new place: 8-10 px up is the only way to fill it (its lower half could come 4-6 px)
    assert far_only(ok)[0].nonzero().tolist() == [[4, 1], [4, 2]]
    logits = torch.zeros(1, ok.shape[1], 12, 12)
    logits[:, (ok.shape[1] - 1) // 2] = 5.0  # "stay" everywhere: the far squares are what is wrong
    weighed = [moves_loss(logits, ok, 5.0, far_weight).item() for far_weight in (0.0, 20.0)]
    assert weighed[1] > weighed[0]


def test_a_sprite_whose_squares_disagree_by_a_pixel_moves_as_one_and_a_distinct_object_keeps_its_move():
    motion = FrameMotion(FrameDynamicsConfig(resolution=8, channels=(8, 16), action_dim=8, motion=MOTION))
    table = move_table(4).tolist()
    one, two, up = (table.index(m) for m in ([1, 0], [2, 0], [0, -3]))
    logits = torch.zeros(1, motion.redraw + 1, 8, 8)
    logits[:, motion.stay] = 4.0
    # a 2x2-square sprite that steps 1.5 px: three squares lean to 1 px, one (weakly) to 2 px
    for y, x, best in ((1, 1, one), (1, 2, one), (2, 1, one), (2, 2, two)):
        logits[0, motion.stay, y, x] = 0.0
        logits[0, one, y, x], logits[0, two, y, x] = 5.0, 4.5
        logits[0, best, y, x] = 5.5
    logits[0, motion.stay, 2, 3], logits[0, up, 2, 3] = 0.0, 9.0  # touching it, an object surely going up
    logits[0, motion.stay, 6, 6], logits[0, two, 6, 6] = 0.0, 6.0  # far away, another going 2 px
    logits[0, motion.stay, 5, 1], logits[0, motion.redraw, 5, 1] = 0.0, 6.0  # something new to draw
    per_square = logits.argmax(1)
    assert per_square[0, 2, 2] == two  # chosen square by square, the sprite tears
    moves = motion.choose(logits)
    assert (moves[0, 1:3, 1:3] == one).all()  # chosen as a sprite, it moves as one
    assert moves[0, 2, 3] == up and moves[0, 6, 6] == two and moves[0, 5, 1] == motion.redraw
    assert (moves[0, 0] == motion.stay).all()
    motion.config.decode = "square"
    assert torch.equal(motion.choose(logits), per_square)
    motion.config.redraw = False  # nothing is redrawn: the square takes its likeliest move
    assert motion.choose(logits)[0, 5, 1] == logits[0, : motion.redraw, 5, 1].argmax()


def test_a_stay_bias_keeps_a_square_that_moves_weakly_and_lets_a_sure_move_through():
    motion = FrameMotion(FrameDynamicsConfig(resolution=8, channels=(8, 16), action_dim=8, motion=MOTION))
    right = move_table(4).tolist().index([2, 0])
    logits = torch.zeros(1, motion.redraw + 1, 8, 8)
    logits[:, motion.stay] = 4.0
    logits[0, right, 3, 3] = 5.0  # a wall square the net would move, 1 nat over staying
    logits[0, right, 6, 1] = 9.0  # the player, surely moving
    assert motion.choose(logits)[0, 3, 3] == right
    motion.config.stay_bias = 2.0
    moves = motion.choose(logits)
    assert moves[0, 3, 3] == motion.stay and moves[0, 6, 1] == right
    assert logits[0, motion.stay, 0, 0] == 4.0  # the caller's logits are left as they were
    with pytest.raises(ConfigError, match="stay_bias"):
        FrameDynamicsConfig(resolution=8, channels=(8, 16), action_dim=8, motion={**MOTION, "stay_bias": -1.0})


def test_outcome_decoding_weighs_every_move_that_makes_the_same_square():
    """A ball (one 4x4 square) leaves its square for the next on the right, beside a wall. The net spreads the
    ball's old square over the many moves that fetch black (none alone beats "stay"), and the wall's edge over
    "stay" and the moves along the wall (none alone beats a move that fetches black)."""
    motion = FrameMotion(
        FrameDynamicsConfig(resolution=8, channels=(8, 16), action_dim=8, motion={**MOTION, "decode": "outcome"})
    )
    table = move_table(4).tolist()
    frame = torch.full((1, 3, 32, 32), -1.0)
    frame[0, :, 8:12, 8:12] = 1.0  # the ball: square (2, 2)
    frame[0, 0, 20:32, :] = 0.5  # a wall, rows 20-31: its top squares (5, *) border the black above
    logits = torch.full((1, motion.redraw + 1, 8, 8), -10.0)
    logits[:, motion.stay] = 3.0  # everywhere else the net is sure nothing changes
    logits[0, table.index([4, 0]), 2, 3] = 9.0  # the ball arrives in square (2, 3) from 4 px left
    ball_leaves = [table.index([dx, dy]) for dx, dy in table if abs(dx) == 4 or abs(dy) == 4]  # all fetch black
    logits[0, :, 2, 2] = -10.0
    logits[0, motion.stay, 2, 2] = 1.0
    logits[0, ball_leaves, 2, 2] = 0.0  # each less likely than "stay", 32 of them together far likelier
    along = [table.index([dx, 0]) for dx in (-2, -1, 1, 2)]  # the wall's edge, moved sideways: the same pixels
    logits[0, :, 5, 4] = -10.0
    logits[0, [motion.stay, *along], 5, 4] = 1.0
    logits[0, table.index([0, 3]), 5, 4] = 1.5  # black fetched from 3 px above: the likeliest single move
    motion.config.decode = "sprite"
    by_move = motion.choose(logits)
    assert by_move[0, 2, 2] == motion.stay and by_move[0, 5, 4] == table.index([0, 3])  # a trail, a torn wall
    motion.config.decode = "outcome"
    moves = motion.choose(logits, frame)
    drawn = motion.warp(frame, moves)
    assert (drawn[0, :, 8:12, 8:12] == -1).all() and (drawn[0, :, 8:12, 12:16] == 1).all()  # the ball moved, whole
    assert torch.equal(drawn[0, :, 20:24, 16:20], frame[0, :, 20:24, 16:20])  # the wall kept
    assert (moves[0, 6:] == motion.stay).all() and moves[0, 0, 0] == motion.stay
    with pytest.raises(ValueError, match="needs the frame the moves apply to"):
        motion.choose(logits)


def test_the_squares_outcome_decoding_compares_are_the_moves_training_scores():
    frames = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    b, y, x = torch.ones(2, 8, 8, dtype=torch.bool).nonzero(as_tuple=True)
    made = moved_squares(frames, 4, 4, b, y, x)  # (128, 16, 81)
    stay = made.shape[-1] // 2
    costs = move_costs(frames, frames, 4, 4)  # (2, 81, 8, 8): each move of each square against the square itself
    torch.testing.assert_close((made - made[:, :, stay, None]).abs().mean(1), costs.permute(0, 2, 3, 1)[b, y, x])


def keyed_square(n: int, generator: torch.Generator, size: int = 32, side: int = 8) -> tuple[torch.Tensor, ...]:
    """(prev, next) (n, 3, size, size) and the keys (n,): a side x side white square on black moved 4 px right
    (RIGHT, 3), left (LEFT, 4) or not at all (NOOP, 0): only the key says which."""
    prev, nxt = torch.full((2, n, 3, size, size), -1.0)
    keys = torch.tensor([0, 3, 4])[torch.randint(0, 3, (n,), generator=generator)]
    xs = torch.randint(4, size - side - 4, (n,), generator=generator)
    ys = torch.randint(0, size - side, (n,), generator=generator)
    for i, (x, y, key) in enumerate(zip(xs.tolist(), ys.tolist(), keys.tolist())):
        step = {0: 0, 3: 4, 4: -4}[key]
        prev[i, :, y : y + side, x : x + side] = 1
        nxt[i, :, y : y + side, x + step : x + step + side] = 1
    return prev, nxt, keys


@pytest.mark.parametrize("full_frame", [0, 32], ids=["small-frames", "full-frame-too"])
def test_the_motion_net_learns_to_move_the_sprite_the_way_the_key_says(full_frame):
    from core.actions import NUM_ACTIONS
    from core.evaluation.image_quality import masked_psnr
    from core.frame_codec import FramePool
    from core.frames import changed_mask

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    motion_config = {**MOTION, "full_frame": full_frame}
    config = FrameDynamicsConfig(resolution=8, channels=(8, 16), mid_blocks=1, action_dim=8, motion=motion_config)
    motion, pool = FrameMotion(config), FramePool(config)
    optimizer = torch.optim.Adam(motion.parameters(), lr=3e-3)

    def inputs(prev, keys):
        small = pool.encode(prev)
        recent = torch.full((len(keys), config.action_context), NUM_ACTIONS)
        recent[:, 0] = keys
        return torch.stack([small, small], 1), recent, prev

    for _ in range(150):
        prev, nxt, keys = keyed_square(16, generator)
        ok = acceptable_moves(prev, nxt, 4, 4, 0.03, 0.15)
        loss = moves_loss(motion.scores(*inputs(prev, keys)), ok, 20.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    prev, nxt, keys = keyed_square(48, generator)
    moved = changed_mask(nxt, prev)
    with torch.no_grad():
        drawn = motion.warp(prev, motion.scores(*inputs(prev, keys)).argmax(1))
        wrong = motion.warp(prev, motion.scores(*inputs(prev, keys.roll(1))).argmax(1))
    assert masked_psnr(drawn, nxt, moved) > 30  # the sprite moved whole, where the key said
    assert masked_psnr(wrong, nxt, moved) < masked_psnr(drawn, nxt, moved) - 10  # and the keys decided it
    motion.config.decode = "objects"  # the square as one segment, moved by the move likeliest for its pixels
    with torch.no_grad():
        logits = motion.scores(*inputs(prev, keys))
        by_objects = motion.draw(motion.predict_moves(logits, prev, lambda: None), prev, upsampler=None)
    assert masked_psnr(by_objects, nxt, moved) > 30


def test_play_moves_pixels_and_calls_the_denoiser_and_upsampler_only_to_redraw(monkeypatch):
    from core.session import WorldSession
    from tests.synthetic import sprite_frames

    torch.manual_seed(0)
    model = WorldModel(motion_config()).eval()
    calls = {"upsampler": 0, "denoiser": 0}
    upsample, predict = model.decoder.forward, model.dynamics.predict

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(model.decoder, "forward", counted("upsampler", upsample))
    monkeypatch.setattr(model.dynamics, "predict", counted("denoiser", predict))
    session = WorldSession(model)
    first = sprite_frames(1, seed=3)[0]
    session.reset(first)
    assert (session.step("RIGHT") == first).all()  # a fresh head says "stay": the frame, exactly
    assert calls == {"upsampler": 0, "denoiser": 0} and isinstance(session.prediction, FramePrediction)
    with torch.no_grad():
        model.dynamics.motion.head[-1].bias[-1] = 10.0  # now every square is redrawn
    session.step("RIGHT")
    assert calls == {"upsampler": 1, "denoiser": 1}
    model.dynamics.motion.config.redraw = False  # play that never redraws: each square its likeliest move
    session.step("RIGHT")
    assert calls == {"upsampler": 1, "denoiser": 1} and (session.prediction.moves != model.dynamics.motion.redraw).all()


def test_the_clip_forward_and_the_step_choose_the_same_moves():
    from core.frames import to_model
    from tests.synthetic import sprite_frames

    torch.manual_seed(0)
    model = WorldModel(motion_config()).eval()
    with torch.no_grad():
        model.dynamics.motion.head[-1].weight.normal_(0, 1.0)  # a head with opinions
    frames = to_model(sprite_frames(4, seed=2))
    small = model.encode(frames)
    actions = torch.tensor([[3, 3, 4, 0]])
    with torch.no_grad():
        clip = model.dynamics(small[None], actions, full=frames[None])
        state = model.dynamics.init_state(1)
        for t in range(4):
            step, state = model.dynamics.step(small[t : t + 1], actions[:, t], state, full=frames[t : t + 1])
            assert torch.equal(step.moves[0], clip.moves[0, t])
        assert clip.small.shape == (1, 4, 3, 16, 16)  # the denoiser's frames too: what a redrawn square shows
        # without the full frames there is nothing to move: the denoiser's frames alone (the evaluation's loss gap)
        assert torch.equal(model.dynamics(small[None], actions), clip.small)


def test_a_motion_model_saves_loads_and_checks_its_config(tmp_path):
    model = WorldModel(motion_config())
    model.save_pretrained(tmp_path / "m")
    again = WorldModel.from_pretrained(tmp_path / "m")
    assert again.config.dynamics.motion == model.config.dynamics.motion
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    bad_configs = (({"radius": 0}, "radius"), ({"channels": (8, 12)}, "multiples of 8"), ({"full_frame": 20}, "full"))
    for bad, message in bad_configs:
        with pytest.raises(ConfigError, match=message):
            frames_config(motion={**MOTION, **bad})
    with pytest.raises(ConfigError, match="motion.channels"):
        frames_config(motion={**MOTION, "channels": (8, 8, 8, 8, 8, 8)})  # 16 does not halve 5 times
    with pytest.raises(ConfigError, match="image_size"):
        frames_config(motion={**MOTION, "full_frame": 32})  # a multiple of the small frame, but not the frame


@pytest.mark.parametrize(
    "how",
    ["frames.motion_played=false", "frames.motion_played=true", "frames.motion_crop=8"],
    ids=["real-pairs", "played", "crops"],
)
def test_the_frames_stage_trains_a_motion_net_alone_and_scores_it_on_held_out_clips(tmp_path, how):
    from core.train import run_stage
    from core.train.config import load_run_config
    from core.train.metrics import read_metrics
    from tests.train_fixtures import write_gameplay_shards

    source = WorldModel(frames_config())
    source.save_pretrained(tmp_path / "source")
    architecture = tmp_path / "architecture.json"
    architecture.write_text(json.dumps(motion_config().to_dict()))
    shards = write_gameplay_shards(tmp_path / "frames", samples=2, frames=8)
    write_gameplay_shards(tmp_path / "frames-val", samples=1, frames=8, split="val")
    overrides = frames_run(architecture, tmp_path / "source", shards) + [
        f"out={tmp_path / 'run'}",
        f"data.val=[{tmp_path / 'frames-val'}]",
        "model.init_parts=[dynamics, decoder]",  # the motion net is grown on the trained model
        "frames.freeze_dynamics=true",
        "frames.freeze_upsampler=true",
        how,  # on real pairs, on its own moved frames (as the app plays), or on crops where clips move
    ]
    run_stage(load_run_config(None, overrides, stage="frames"))
    val = [line for line in read_metrics(tmp_path / "run" / "metrics.jsonl") if line["split"] == "val"][-1]
    assert 0 <= val["motion_hit"] <= 1 and val["motion_psnr"] > 0 and "motion_loss_shuffled_actions" in val
    assert val["motion_loop_psnr"] > 0 and val["motion_loop_psnr_copy_last"] > 0
    after = WorldModel.from_pretrained(tmp_path / "run" / "model").state_dict()
    assert all(torch.equal(after[k], v) for k, v in source.state_dict().items())  # denoiser, upsampler as they were
    assert after["dynamics.motion.head.2.weight"].abs().sum() > 0  # the head started at zero, and learnt
    if "crop" in how:
        for bad, message in [
            (["frames.motion_crop=6"], "motion_crop must be 0 or a multiple of 4 up to the small frame's 16"),
            (["frames.motion_crop=20"], "motion_crop must be 0 or a multiple of 4 up to the small frame's 16"),
            (["frames.motion_played=true"], "motion_crop cuts real frame pairs"),
        ]:
            with pytest.raises(ConfigError, match=message):
                run_stage(load_run_config(None, [*overrides, f"out={tmp_path / 'bad'}", *bad], stage="frames"))


def test_a_lora_fine_tune_of_a_motion_model_trains_only_adapters_and_its_moves_learn():
    """A fine-tune (finetune/train.py: the dynamics' objective without the upsampler) of a base with a motion net:
    the adapter reaches the motion net too, its base weights stay frozen, and the motion loss falls."""
    from core.frames import to_uint8
    from core.train.config import FramesSection
    from core.train.frames import FramesObjective
    from finetune.lora import add_lora

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    base = WorldModel(motion_config())
    with torch.no_grad():  # as a trained base's: a head that reads its features (a fresh one starts at zero)
        base.dynamics.motion.head[-1].weight.normal_(0, 0.1)
    model = add_lora(base, "test-motion")
    objective = FramesObjective(model, FramesSection(unroll=1), train_upsampler=False)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable) and any(".motion." in n for n in trainable)

    def batch():  # clips of 4 frames at 256x256: the sprite still for 3 frames, then moved by the key
        prev, nxt, keys = keyed_square(8, generator, size=256, side=32)
        frames = torch.stack([prev, prev, prev, nxt], 1).flatten(0, 1)
        actions = torch.stack([torch.zeros_like(keys)] * 2 + [keys, keys], 1)
        return {"frames": torch.as_tensor(to_uint8(frames)).view(8, 4, 256, 256, 3), "actions": actions}

    held_out = batch()
    with torch.no_grad():
        before = objective(held_out)[1]["motion_loss"].item()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(40):
        loss, _ = objective(batch())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = objective(held_out)[1]["motion_loss"].item()
    assert after < 0.9 * before  # on a held-out batch (from a random base: a trained one starts nearer)


def test_a_fine_tune_of_a_base_that_never_redraws_trains_only_its_motion_net():
    from core.train.config import FramesSection
    from finetune.lora import add_lora
    from finetune.train import lora_frames_objective

    base = WorldModel(frames_config(motion={**MOTION, "redraw": False}))
    model = add_lora(base, "test-motion")
    objective = lora_frames_objective(model, FramesSection(unroll=1))
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert not objective.train_dynamics and not objective.train_upsampler
    assert trainable and all("lora_" in name and ".motion." in name for name in trainable)
    redrawing = lora_frames_objective(add_lora(WorldModel(motion_config()), "test-motion"), FramesSection(unroll=1))
    assert redrawing.train_dynamics and not redrawing.train_upsampler


@pytest.mark.parametrize("engine", [("fp32", "onnx"), ("int8", "torch"), ("bf16", "torch")], ids=str)
def test_the_play_engines_play_a_motion_model(engine):
    """The app's engines (core/engine.py) prepare a motion model: the ONNX decoder draws its redrawn squares, and
    quantized or bf16 weights choose moves that still take whole pixels of the last frame."""
    if engine[1] == "onnx":
        pytest.importorskip("onnxruntime")
    from core.engine import EngineConfig, prepare
    from core.session import WorldSession
    from tests.synthetic import sprite_frames

    torch.manual_seed(0)
    model = WorldModel(motion_config()).eval()
    with torch.no_grad():
        model.dynamics.motion.head[-1].weight.normal_(0, 1.0)
        model.dynamics.motion.head[-1].bias[-1] = 1.0  # some squares redrawn, most moved
    first = sprite_frames(1, seed=3)[0]
    session = WorldSession(prepare(model, EngineConfig(*engine)))
    session.reset(first)
    frame = session.step("RIGHT")
    moves = session.prediction.moves[0]
    moved = moves != model.dynamics.motion.redraw
    assert moved.any() and not moved.all() and frame.shape == first.shape
    colours = {tuple(c) for c in first.reshape(-1, 3).tolist()}
    square = first.shape[0] // moves.shape[-1]
    kept = moved.repeat_interleave(square, 0).repeat_interleave(square, 1).numpy()
    assert {tuple(c) for c in frame[kept].tolist()} <= colours  # moved squares hold only the last frame's colours


def test_reading_the_full_frame_grows_on_a_trained_net_as_a_no_op(tmp_path):
    """dynamics.motion.full_frame adds an input that starts at zero: grown on a trained net (model.init_parts), it
    first chooses the moves that net chose."""
    from core.train.config import load_run_config
    from core.train.loop import build_model
    from tests.synthetic import sprite_frames

    torch.manual_seed(0)
    trained = WorldModel(motion_config())
    with torch.no_grad():
        trained.dynamics.motion.head[-1].weight.normal_(0, 1.0)
    trained.save_pretrained(tmp_path / "trained")
    architecture = tmp_path / "architecture.json"
    architecture.write_text(json.dumps(frames_config(motion={**MOTION, "full_frame": 256}).to_dict()))
    config = load_run_config(
        None,
        [f"model.variant={architecture}", f"model.init={tmp_path / 'trained'}", "model.init_parts=[dynamics, decoder]"],
        stage="frames",
    )
    grown = build_model(config).eval()
    frame = torch.as_tensor(sprite_frames(1, seed=4)).permute(0, 3, 1, 2).float() / 127.5 - 1
    context = trained.encode(frame)[:, None].expand(-1, 2, -1, -1, -1)
    recent = torch.tensor([[3, 3, 0, 0]])
    with torch.no_grad():
        before = trained.dynamics.motion.scores(context, recent)
        after = grown.dynamics.motion.scores(context, recent, frame)
    assert torch.allclose(before, after, atol=1e-5) and grown.dynamics.motion.full_in is not None
    with pytest.raises(ValueError, match="full frame"):
        grown.dynamics.motion.scores(context, recent)


def test_a_motion_net_widened_to_farther_moves_plays_as_it_did_then_learns_them(tmp_path):
    """dynamics.motion.radius raised over a trained net's (model.init_parts; a platformer's jump falls farther in a
    frame than nano's 6 px reach): each old move keeps its score, the farther ones start out of the running, and
    the widened net then learns a step only they make."""
    from core.actions import NUM_ACTIONS
    from core.evaluation.image_quality import masked_psnr
    from core.frame_codec import FramePool
    from core.frames import changed_mask
    from core.train.config import load_run_config
    from core.train.loop import build_model
    from tests.synthetic import sprite_frames

    torch.manual_seed(0)
    near = {**MOTION, "radius": 2}
    trained = WorldModel(frames_config(motion=near))
    with torch.no_grad():
        trained.dynamics.motion.head[-1].weight.normal_(0, 1.0)
    trained.save_pretrained(tmp_path / "trained")
    architecture = tmp_path / "architecture.json"
    architecture.write_text(json.dumps(motion_config().to_dict()))  # radius 4
    config = load_run_config(None, [f"model.variant={architecture}", *config_overrides(tmp_path)], stage="frames")
    widened = build_model(config).eval()
    frame = torch.as_tensor(sprite_frames(1, seed=4)).permute(0, 3, 1, 2).float() / 127.5 - 1
    context = trained.encode(frame)[:, None].expand(-1, 2, -1, -1, -1)
    recent = torch.tensor([[3, 3, 0, 0]])
    with torch.no_grad():
        before = trained.dynamics.motion.scores(context, recent)
        after = widened.dynamics.motion.scores(context, recent)
    wide = move_table(4).tolist()
    rows = [wide.index(move) for move in move_table(2).tolist()] + [len(wide)]  # the old moves, then "redraw"
    assert after.shape[1] == len(wide) + 1 and torch.allclose(after[:, rows], before, atol=1e-5)
    assert torch.equal(after.argmax(1), torch.tensor(rows)[before.argmax(1)])  # the farther ones are not picked
    narrower = tmp_path / "narrower.json"
    narrower.write_text(json.dumps(frames_config(motion={**MOTION, "radius": 1}).to_dict()))
    with pytest.raises(ConfigError, match="radius"):  # a net is widened, never narrowed: its far moves would be lost
        build_model(load_run_config(None, [f"model.variant={narrower}", *config_overrides(tmp_path)], stage="frames"))

    # a widened net learns the sprite's 4 px step, which no move of its radius-2 start makes
    small = {"resolution": 8, "channels": (8, 16), "mid_blocks": 1, "action_dim": 8}
    start = FrameMotion(FrameDynamicsConfig(**small, motion=near))
    config = FrameDynamicsConfig(**small, motion=MOTION)
    motion, pool = FrameMotion(config), FramePool(config)
    weights = start.state_dict()
    head = f"{SCORES_LAYER}.weight", f"{SCORES_LAYER}.bias"
    weights[head[0]], weights[head[1]] = widen_moves(weights[head[0]], weights[head[1]], 2, 4)
    motion.load_state_dict(weights)
    optimizer = torch.optim.Adam(motion.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)

    def inputs(prev, keys):
        small = pool.encode(prev)
        keys = torch.cat([keys[:, None], torch.full((len(keys), config.action_context - 1), NUM_ACTIONS)], 1)
        return torch.stack([small, small], 1), keys

    for _ in range(150):
        prev, nxt, keys = keyed_square(16, generator)
        loss = moves_loss(motion.scores(*inputs(prev, keys)), acceptable_moves(prev, nxt, 4, 4, 0.03, 0.15), 20.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    prev, nxt, keys = keyed_square(48, generator)
    with torch.no_grad():
        drawn = motion.warp(prev, motion.scores(*inputs(prev, keys)).argmax(1))
    assert masked_psnr(drawn, nxt, changed_mask(nxt, prev)) > 30


def config_overrides(folder) -> list[str]:
    """A frames run's model taken from the trained net in `folder`."""
    return [f"model.init={folder / 'trained'}", "model.init_parts=[dynamics, decoder]"]


def test_a_motion_crop_is_cut_where_the_clip_moves_and_scored_with_the_whole_frames_targets():
    """frames.motion_crop: the motion net learns on a window of each clip that holds what moved; its squares'
    targets are those of the whole frame (the margin around the scored squares holds what their moves fetch),
    and a scene cut before the scored pair (a new level: every pixel changes) does not take the crop away."""
    from core.frames import to_uint8
    from core.train.config import FramesSection
    from core.train.frames import CROP_MARGIN, FramesObjective

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    prev, nxt, keys = keyed_square(6, generator, size=256, side=32)
    prev[5], nxt[5], keys[5] = prev[0], prev[0], 0  # a clip where nothing moves
    clips = torch.stack([prev, prev, nxt], 1)  # (6, 3, 3, 256, 256)
    clips[2:5, 0] = torch.where(clips[2:5, 1] > 0, -1.0, 1.0)  # three clips open on the frame before a cut
    model = WorldModel(motion_config())
    square = 256 // model.dynamics.config.resolution
    objective = FramesObjective(model, FramesSection(unroll=1, motion_crop=4), train_upsampler=False)
    crops, small = objective.motion_crops(clips)
    span = (4 + 2 * CROP_MARGIN) * square
    assert crops.shape == (6, 3, 3, span, span) and small.shape == (6, 3, 3, span // square, span // square)
    inner = slice(CROP_MARGIN * square, -CROP_MARGIN * square)
    moved = (crops[:, 2] != crops[:, 1]).any(1)[:, inner, inner].flatten(1).any(1)
    assert moved[keys != 0].all() and not moved[5]  # every moving sprite is in its crop's scored squares
    # a crop as large as the frame: its scored squares are the whole frame's, with the whole frame's targets
    whole = FramesObjective(model, FramesSection(unroll=1, motion_crop=16), train_upsampler=False)
    crops, _ = whole.motion_crops(clips)
    trim = CROP_MARGIN
    cut = acceptable_moves(crops[:, 1], crops[:, 2], 4, square, 0.03, 0.15)[..., trim:-trim, trim:-trim]
    assert torch.equal(cut, acceptable_moves(clips[:, 1], clips[:, 2], 4, square, 0.03, 0.15))

    # it learns: a few steps on crops lower the motion loss on whole held-out frames
    def batch():
        prev, nxt, keys = keyed_square(8, generator, size=256, side=32)
        frames = torch.stack([prev, prev, nxt], 1)
        actions = torch.stack([torch.zeros_like(keys), keys, keys], 1)
        return {"frames": torch.as_tensor(to_uint8(frames.flatten(0, 1))).view(8, 3, 256, 256, 3), "actions": actions}

    with torch.no_grad():
        model.dynamics.motion.head[-1].weight.normal_(0, 0.1)  # as a trained base's head, which reads its features
    held_out = FramesObjective(model, FramesSection(unroll=1), train_upsampler=False, train_dynamics=False)
    test = batch()
    with torch.no_grad():
        before = held_out(test)[1]["motion_loss"].item()
    cropped = FramesObjective(
        model, FramesSection(unroll=1, motion_crop=4), train_upsampler=False, train_dynamics=False
    )
    optimizer = torch.optim.Adam(model.dynamics.motion.parameters(), lr=3e-3)
    for _ in range(40):
        loss, _ = cropped(batch())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = held_out(test)[1]["motion_loss"].item()
    assert after < 0.7 * before
