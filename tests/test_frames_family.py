"""The frames family (nano v2): small pooled frames, a FiLM U-Net dynamics, an upsampler. Its config,
stepping against the clip forward, saving and loading, play, evaluation and its training stage."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.config import ConfigError, WorldModelConfig
from core.world_model import WeightsError, WorldModel


def frames_config(**dynamics) -> WorldModelConfig:
    dyn = dict(resolution=16, channels=(8, 16), mid_blocks=1, action_dim=8)
    dyn.update(dynamics)
    return WorldModelConfig(
        name="test-frames",
        family="frames",
        tokenizer={"resolution": 16},
        dynamics=dyn,
        decoder={"resolution": 16, "channels": (8, 8, 8, 8, 8)},
    )


def frames_run(architecture, source, shards) -> list[str]:
    """Overrides for a 2-step frames run with `architecture`'s parts, some taken from the model `source`."""
    return [
        f"model.variant={architecture}",
        f"model.init={source}",
        f"data.train=[{shards}]",
        "data.clip_len=5",
        "data.stride=1",
        "data.val_clips=2",
        "train.batch_size=2",
        "train.steps=2",
        "log.every=1",
        "log.val_every=2",
        "log.sample_every=0",
        "log.progress=false",
        "log.tensorboard=false",
        "optim.warmup_steps=1",
    ]


def test_a_frames_config_builds_its_own_parts_and_round_trips():
    config = frames_config()
    again = WorldModelConfig.from_dict(config.to_dict())
    assert again == config and again.dynamics.channels == (8, 16)
    model = WorldModel(config)
    assert type(model.dynamics).__name__ == "FrameDynamics" and model.parameter_counts()["tokenizer"] == 0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"family": "pixels"}, "unknown model family"),
        ({"tokenizer": {"resolution": 32}}, "small frame's size differs"),
        ({"dynamics": {"resolution": 16, "action_mode": "cross"}}, "action_mode"),
        ({"decoder": {"resolution": 16, "channels": (8, 8)}}, "levels"),
        ({"dynamics": {"resolution": 16, "vocab_size": 512}}, "unknown field"),
    ],
)
def test_bad_frames_configs_are_named(change, message):
    data = frames_config().to_dict()
    data.update(change)
    with pytest.raises(ConfigError, match=message):
        WorldModelConfig.from_dict(data)


def test_stepping_frame_by_frame_equals_the_clip_forward():
    torch.manual_seed(0)
    model = WorldModel(frames_config(context=3)).dynamics.eval()
    for p in model.parameters():  # zero-initialised outputs would make the test trivial
        p.data.add_(0.05 * torch.randn_like(p))
    frames = torch.rand(2, 6, 3, 16, 16) * 2 - 1
    actions = torch.randint(0, 18, (2, 6))
    with torch.no_grad():
        full = model(frames, actions)
        state = model.init_state(2)
        stepped = []
        for t in range(6):
            output, state = model.step(frames[:, t], actions[:, t], state)
            stepped.append(output)
    assert torch.allclose(torch.stack(stepped, 1), full, atol=1e-5)
    changed = actions.clone()
    changed[:, 4] = (actions[:, 4] + 3) % 18
    with torch.no_grad():
        other = model(frames, changed)
    assert torch.allclose(other[:, :4], full[:, :4]) and not torch.allclose(other[:, 4], full[:, 4])


def test_save_and_load_are_strict_for_the_frames_family(tmp_path):
    model = WorldModel(frames_config())
    model.save_pretrained(tmp_path / "m", dtype="fp16")
    again = WorldModel.from_pretrained(tmp_path / "m")
    assert again.config == model.config
    other = WorldModel(frames_config(channels=(16, 16)))
    other.save_pretrained(tmp_path / "other")
    (tmp_path / "other" / "config.json").write_text((tmp_path / "m" / "config.json").read_text())
    with pytest.raises(WeightsError, match="shape"):
        WorldModel.from_pretrained(tmp_path / "other")


def test_a_session_plays_a_frames_model_with_a_state_of_fixed_size():
    from core.session import WorldSession

    session = WorldSession(WorldModel(frames_config()))
    start = session.reset(seed=3, game="maze")
    sizes = set()
    for action in ["RIGHT", "LEFT", "UP+FIRE", "NOOP"] * 3:
        frame = session.step(action)
        sizes.add(session.state_numel())
    assert frame.shape == start.shape and frame.dtype == np.uint8 and len(sizes) == 1
    # the dynamics reads the frame the player sees, pooled: the upsampler's cleaning carries into the next step
    assert torch.equal(session._tokens, session.model.encode(session._frame))


def test_evaluation_drives_a_frames_model(tmp_path):
    from core.evaluation.rollouts import reconstruct, rollout, teacher_forced
    from core.train.dynamics import action_loss_gap
    from tests.synthetic import sprite_frames

    model = WorldModel(frames_config()).eval()
    frames = sprite_frames(5, seed=1)
    round_trip, decoded, inputs = reconstruct(model, frames)
    assert round_trip.shape == frames.shape and decoded.shape == (4, 256, 256, 3) and inputs.shape == (5, 3, 16, 16)
    actions = np.array([3, 4, 0, 1, 2])
    assert teacher_forced(model, frames, actions, inputs).shape == (4, 256, 256, 3)
    steps = list(rollout(model, frames[:2], np.zeros((2, 3), np.int64)))
    assert len(steps) == 3 and steps[0].shape == (2, 256, 256, 3)
    true, shuffled = action_loss_gap(
        model.dynamics,
        torch.stack([inputs, inputs]),
        torch.stack([torch.as_tensor(actions), torch.as_tensor(actions[::-1].copy())]),
    )
    assert true == pytest.approx(shuffled)  # untrained: the keys are not used yet


def test_the_frames_stage_trains_and_exports_a_model_that_plays(tmp_path):
    from core.train import run_stage
    from core.train.config import load_run_config
    from core.train.metrics import read_metrics
    from tests.train_fixtures import write_gameplay_shards

    architecture = tmp_path / "architecture.json"
    architecture.write_text(json.dumps(frames_config().to_dict()))
    shards = write_gameplay_shards(tmp_path / "frames", samples=2, frames=8)
    write_gameplay_shards(tmp_path / "frames-val", samples=1, frames=8, split="val")
    config = load_run_config(
        None,
        [
            f"model.variant={architecture}",
            f"out={tmp_path / 'run'}",
            f"data.train=[{shards}]",
            f"data.val=[{tmp_path / 'frames-val'}]",
            "data.clip_len=5",
            "data.stride=1",
            "data.val_clips=2",
            "train.batch_size=2",
            "train.steps=3",
            "log.every=1",
            "log.val_every=3",
            "log.save_every=3",
            "log.sample_every=3",
            "log.progress=false",
            "log.tensorboard=false",
            "optim.warmup_steps=1",
            "frames.closed_loop=3",  # the upsampler learns from frames played as the app plays them
        ],
        stage="frames",
    )
    run_stage(config)
    val = [line for line in read_metrics(tmp_path / "run" / "metrics.jsonl") if line["split"] == "val"][-1]
    assert (
        val["dynamics_mse"] >= 0 and val["decoder_psnr"] > 0 and val["loop_psnr"] > 0 and "action_gap_relative" in val
    )
    model = WorldModel.from_pretrained(tmp_path / "run" / "model")
    assert model.config.family == "frames"
    with pytest.raises(ConfigError, match="clip_len"):
        run_stage(
            load_run_config(
                None,
                [
                    f"model.variant={architecture}",
                    f"out={tmp_path / 'run2'}",
                    f"data.train=[{shards}]",
                    "data.clip_len=3",
                ],
                stage="frames",
            )
        )


@pytest.mark.parametrize("drawing", [{}, {"warp": "free"}, {"warp": "gated"}, {"base": "blend"}], ids=str)
def test_the_onnx_decoder_plays_a_frames_model_as_torch_does(drawing):
    """The app's default engine exports the decoder to ONNX: the upsampler (with its motion field, grid_sample)
    must export and agree."""
    pytest.importorskip("onnxruntime")
    from core.engine import EngineConfig, prepare

    torch.manual_seed(0)
    data = frames_config().to_dict()
    data["decoder"].update(drawing)
    model = WorldModel(WorldModelConfig.from_dict(data)).eval()
    torch.nn.init.normal_(model.decoder.to_rgb.weight, std=0.1)  # zero-initialised output would hide a mismatch
    if "warp" in drawing:
        torch.nn.init.normal_(model.decoder.flow.weight, std=0.5)
    if "base" in drawing:
        torch.nn.init.normal_(model.decoder.blend.weight, std=0.5)
    prepared = prepare(model, EngineConfig("fp32", "onnx"))
    small, prev = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(prepared.decoder(small, prev), model.decoder(small, prev), atol=1e-4)


def moving_squares(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(prev, next) (n, 3, 32, 32) frames in [-1, 1]: an 8x8 white square on black, moved 4 px left or right."""
    prev, nxt = torch.full((2, n, 3, 32, 32), -1.0)
    xs = torch.randint(4, 20, (n,), generator=generator)
    ys = torch.randint(0, 24, (n,), generator=generator)
    moves = torch.randint(0, 2, (n,), generator=generator) * 8 - 4
    for i, (x, y, m) in enumerate(zip(xs.tolist(), ys.tolist(), moves.tolist())):
        prev[i, :, y : y + 8, x : x + 8] = 1
        nxt[i, :, y : y + 8, x + m : x + m + 8] = 1
    return prev, nxt


@pytest.mark.parametrize("drawing", [{}, {"warp": "free"}, {"warp": "gated"}, {"base": "blend"}], ids=str)
def test_the_upsampler_draws_a_sprite_where_the_small_frame_moved_it(drawing):
    """What the upsampler is for: the small frame says the sprite moved, the previous full frame has it where
    it was; the upsampler must draw it at the new place (nano v2's first upsampler redrew the old one)."""
    from core.config import FramePoolConfig, UpsamplerConfig
    from core.evaluation.image_quality import masked_psnr
    from core.frame_codec import FramePool, FrameUpsampler
    from core.frames import changed_mask
    from core.tokenizer import reconstruction_loss

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    upsampler = FrameUpsampler(UpsamplerConfig(resolution=8, image_size=32, channels=(8, 8, 8), blocks=1, **drawing))
    pool = FramePool(FramePoolConfig(resolution=8))
    optimizer = torch.optim.Adam(upsampler.parameters(), lr=3e-3)
    for _ in range(150):
        prev, nxt = moving_squares(16, generator)
        loss = reconstruction_loss(upsampler(pool.encode(nxt), prev), nxt, extra_weight=10 * changed_mask(nxt, prev))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    prev, nxt = moving_squares(64, generator)
    with torch.no_grad():
        drawn = upsampler(pool.encode(nxt), prev)
    moved = changed_mask(nxt, prev)
    assert masked_psnr(drawn, nxt, moved) > masked_psnr(prev, nxt, moved) + 10


def test_the_upsampler_trains_alone_on_a_dynamics_taken_from_another_model(tmp_path):
    """model.init_parts takes the dynamics of an earlier model (its upsampler may differ); frames.freeze_dynamics
    then trains the upsampler alone: the dynamics comes out exactly as it went in."""
    from safetensors.torch import load_file

    from core.train import run_stage
    from core.train.config import load_run_config
    from tests.train_fixtures import write_gameplay_shards

    torch.manual_seed(0)
    source = WorldModel(frames_config())
    for p in source.dynamics.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    source.save_pretrained(tmp_path / "source")
    wider = frames_config().to_dict()
    wider["decoder"]["channels"] = [8, 8, 8, 8, 16]  # another upsampler: it cannot be loaded, only replaced
    architecture = tmp_path / "architecture.json"
    architecture.write_text(json.dumps(wider))
    shards = write_gameplay_shards(tmp_path / "frames", samples=2, frames=8)
    common = frames_run(architecture, tmp_path / "source", shards)
    run_stage(
        load_run_config(
            None,
            common
            + [
                f"out={tmp_path / 'run'}",
                "model.init_parts=[dynamics]",
                "frames.freeze_dynamics=true",
                "frames.predicted_share=0.5",
                "frames.changed_weight=10",
            ],
            stage="frames",
        )
    )
    before, after = (
        load_file(str(tmp_path / "source" / "model.safetensors")),
        load_file(str(tmp_path / "run" / "model" / "model.safetensors")),
    )
    dynamics = [k for k in before if k.startswith("dynamics.")]
    assert dynamics and all(torch.equal(before[k], after[k]) for k in dynamics)
    assert after["decoder.to_rgb.weight"].abs().sum() > 0  # the upsampler learnt (from zero)
    with pytest.raises(ConfigError, match="init_parts"):
        load_run_config(None, common[:1] + [f"out={tmp_path / 'x'}", "model.init_parts=[dynamics]"], stage="frames")
    with pytest.raises(ConfigError, match="init_parts"):
        run_stage(
            load_run_config(None, common + [f"out={tmp_path / 'y'}", "model.init_parts=[decoder]"], stage="frames")
        )


def test_the_dynamics_loss_weighs_moved_pixels_when_asked():
    """A model that repeats the last frame errs only where the sprite moved: weighing those pixels 11x must
    raise its loss ~11x (sprites are a sliver of a frame: unweighted, a blurred or frozen sprite costs little)."""
    from core.frame_dynamics import unrolled_loss

    dynamics = WorldModel(frames_config()).dynamics.eval()  # untrained: the last frame again
    clip = torch.full((1, 4, 3, 16, 16), -1.0)
    for t in range(4):
        clip[0, t, :, 4:8, 2 + 2 * t : 6 + 2 * t] = 1  # a 4x4 square moving 2 px a frame
    actions = torch.zeros(1, 4, dtype=torch.long)
    with torch.no_grad():
        plain = unrolled_loss(dynamics, clip, actions, unroll=1)
        weighted = unrolled_loss(dynamics, clip, actions, unroll=1, changed_weight=10.0)
    assert plain > 0 and 5 < weighted / plain <= 11
