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
    return WorldModelConfig(name="test-frames", family="frames", tokenizer={"resolution": 16}, dynamics=dyn,
                            decoder={"resolution": 16, "channels": (8, 8, 8, 8, 8)})


def test_a_frames_config_builds_its_own_parts_and_round_trips():
    config = frames_config()
    again = WorldModelConfig.from_dict(config.to_dict())
    assert again == config and again.dynamics.channels == (8, 16)
    model = WorldModel(config)
    assert type(model.dynamics).__name__ == "FrameDynamics" and model.parameter_counts()["tokenizer"] == 0


@pytest.mark.parametrize("change, message", [
    ({"family": "pixels"}, "unknown model family"),
    ({"tokenizer": {"resolution": 32}}, "small frame's size differs"),
    ({"dynamics": {"resolution": 16, "action_mode": "cross"}}, "action_mode"),
    ({"decoder": {"resolution": 16, "channels": (8, 8)}}, "levels"),
    ({"dynamics": {"resolution": 16, "vocab_size": 512}}, "unknown field"),
])
def test_bad_frames_configs_are_named(change, message):
    data = frames_config().to_dict()
    data.update(change)
    with pytest.raises(ConfigError, match=message):
        WorldModelConfig.from_dict(data)


def test_stepping_frame_by_frame_equals_the_clip_forward():
    torch.manual_seed(0)
    model = WorldModel(frames_config(context=3)).dynamics.eval()
    for p in model.parameters():                      # zero-initialised outputs would make the test trivial
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
    true, shuffled = action_loss_gap(model.dynamics, torch.stack([inputs, inputs]), torch.stack(
        [torch.as_tensor(actions), torch.as_tensor(actions[::-1].copy())]))
    assert true == pytest.approx(shuffled)       # untrained: the keys are not used yet


def test_the_frames_stage_trains_and_exports_a_model_that_plays(tmp_path):
    from core.train import run_stage
    from core.train.config import load_run_config
    from core.train.metrics import read_metrics
    from tests.train_fixtures import write_gameplay_shards

    architecture = tmp_path / "architecture.json"
    architecture.write_text(json.dumps(frames_config().to_dict()))
    shards = write_gameplay_shards(tmp_path / "frames", samples=2, frames=8)
    write_gameplay_shards(tmp_path / "frames-val", samples=1, frames=8, split="val")
    config = load_run_config(None, [
        f"model.variant={architecture}", f"out={tmp_path / 'run'}", f"data.train=[{shards}]",
        f"data.val=[{tmp_path / 'frames-val'}]", "data.clip_len=5", "data.stride=1", "data.val_clips=2",
        "train.batch_size=2", "train.steps=3", "log.every=1", "log.val_every=3", "log.save_every=3",
        "log.sample_every=3", "log.progress=false", "log.tensorboard=false", "optim.warmup_steps=1"], stage="frames")
    run_stage(config)
    val = [line for line in read_metrics(tmp_path / "run" / "metrics.jsonl") if line["split"] == "val"][-1]
    assert val["dynamics_mse"] >= 0 and val["decoder_psnr"] > 0 and "action_gap_relative" in val
    model = WorldModel.from_pretrained(tmp_path / "run" / "model")
    assert model.config.family == "frames"
    with pytest.raises(ConfigError, match="clip_len"):
        run_stage(load_run_config(None, [f"model.variant={architecture}", f"out={tmp_path / 'run2'}",
                                         f"data.train=[{shards}]", "data.clip_len=3"], stage="frames"))


def test_the_onnx_decoder_plays_a_frames_model_as_torch_does():
    """The app's default engine exports the decoder to ONNX: the upsampler must export and agree."""
    pytest.importorskip("onnxruntime")
    from core.engine import EngineConfig, prepare

    torch.manual_seed(0)
    model = WorldModel(frames_config()).eval()
    torch.nn.init.normal_(model.decoder.to_rgb.weight, std=0.1)   # zero-initialised output would hide a mismatch
    prepared = prepare(model, EngineConfig("fp32", "onnx"))
    small, prev = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(prepared.decoder(small, prev), model.decoder(small, prev), atol=1e-4)
