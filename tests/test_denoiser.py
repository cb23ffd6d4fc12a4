"""The frames family's denoising dynamics (dynamics.denoise_steps > 0): where the next frame is uncertain it
samples one sharp outcome where a direct dynamics predicts their blurred mean; it grows from a trained direct
dynamics, predicting as that did at first; its options are checked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.config import ConfigError, WorldModelConfig
from core.frame_dynamics import SIGMA_MAX, sigma_schedule, unrolled_loss
from core.world_model import WorldModel
from tests.test_frames_family import frames_config, frames_run

LEFT, RIGHT = slice(2, 6), slice(10, 14)  # the columns the square may move to


def coin_flip_clips(n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 3, 3, 16, 16) clips: a 4x4 white square on black still for 2 frames, then 4 px left or right at random
    (no key tells which)."""
    clips = torch.full((n, 3, 3, 16, 16), -1.0)
    clips[:, :2, :, 6:10, 6:10] = 1
    right = torch.rand(n, generator=generator) < 0.5
    for i in range(n):
        clips[i, 2, :, 6:10, RIGHT if right[i] else LEFT] = 1
    return clips


def outcomes(frames: torch.Tensor) -> tuple[float, float]:
    """-> (share of frames with one crisp square, on the left or right and nothing on the other side; share of
    those on the right)."""
    left, right = (frames[:, :, 6:10, side].mean((1, 2, 3)) for side in (LEFT, RIGHT))
    crisp_left, crisp_right = (left > 0.6) & (right < -0.6), (right > 0.6) & (left < -0.6)
    crisp = crisp_left | crisp_right
    return crisp.float().mean().item(), (crisp_right.sum() / crisp.sum().clamp(min=1)).item()


def train(dynamics, steps: int = 200) -> None:
    generator = torch.Generator().manual_seed(1)
    optimizer = torch.optim.Adam(dynamics.parameters(), lr=3e-3)
    actions = torch.zeros(64, 3, dtype=torch.long)
    for _ in range(steps):
        loss = unrolled_loss(dynamics, coin_flip_clips(64, generator), actions, unroll=1, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_where_the_next_frame_is_a_coin_flip_the_denoiser_samples_one_crisp_outcome_and_the_direct_one_blurs():
    torch.manual_seed(0)
    direct = WorldModel(frames_config(channels=(16, 32))).dynamics
    denoiser = WorldModel(frames_config(channels=(16, 32), denoise_steps=8)).dynamics
    for dynamics in (direct, denoiser):
        train(dynamics)
    context = coin_flip_clips(200, torch.Generator().manual_seed(2))[:, :2]
    keys = torch.zeros(200, 4, dtype=torch.long)
    with torch.no_grad():
        blurred, sampled = direct.predict(context, keys), denoiser.predict(context, keys)
    assert outcomes(blurred)[0] == 0  # the mean of the two: two half-bright squares
    crisp, right = outcomes(sampled)
    assert crisp > 0.7 and 0.25 < right < 0.75, (crisp, right)


def growth_run(tmp_path, source_config, architecture_config, frozen="upsampler") -> tuple[WorldModel, list[str]]:
    """A trained-looking source model saved in tmp_path, and the overrides of a frames run that grows it into
    architecture_config with one part (`frozen`: upsampler or dynamics) frozen."""
    import json

    from tests.train_fixtures import write_gameplay_shards

    torch.manual_seed(0)
    source = WorldModel(source_config)
    for p in source.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    source.save_pretrained(tmp_path / "source")
    architecture = tmp_path / "architecture.json"
    architecture.write_text(json.dumps(architecture_config.to_dict()))
    shards = write_gameplay_shards(tmp_path / "frames", samples=2, frames=8)
    return source, frames_run(architecture, tmp_path / "source", shards) + [
        f"out={tmp_path / 'run'}",
        "model.init_parts=[dynamics, decoder]",
        f"frames.freeze_{frozen}=true",
    ]


def test_a_denoiser_grown_from_a_direct_dynamics_predicts_as_it_did_then_learns_alone(tmp_path):
    """model.init_parts: [dynamics, decoder] into an architecture with dynamics.denoise_steps: the trained
    U-Net is read, the denoiser's parts start at zero, so its samples are the direct prediction; with
    frames.freeze_upsampler only the dynamics learns."""

    from safetensors.torch import load_file

    from core.train import run_stage
    from core.train.config import load_run_config
    from core.train.loop import build_model

    source, overrides = growth_run(tmp_path, frames_config(), frames_config(denoise_steps=3))
    config = load_run_config(None, overrides, stage="frames")
    grown = build_model(config).eval()
    context, keys = torch.rand(3, 2, 3, 16, 16) * 2 - 1, torch.randint(0, 18, (3, 4))
    with torch.no_grad():
        assert torch.allclose(grown.dynamics.predict(context, keys), source.dynamics.predict(context, keys), atol=1e-5)
    run_stage(config)
    before, after = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("source", "run/model"))
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    assert after["dynamics.denoiser.noisy_in.weight"].abs().sum() > 0  # the denoiser learnt (from zero)
    with pytest.raises(ConfigError, match="nothing to train"):
        run_stage(
            load_run_config(None, overrides + [f"out={tmp_path / 'x'}", "frames.freeze_dynamics=true"], stage="frames")
        )


def test_a_motion_field_grown_on_a_trained_upsampler_draws_as_it_did_then_learns(tmp_path):
    """model.init_parts: [dynamics, decoder] into an architecture with decoder.warp: the trained upsampler is read,
    its motion field starts at zero (the previous frame unmoved), so it draws as before; then the field learns."""
    from safetensors.torch import load_file

    from core.train import run_stage
    from core.train.config import load_run_config
    from core.train.loop import build_model

    warped = frames_config()
    warped.decoder.warp = "gated"
    source, overrides = growth_run(tmp_path, frames_config(), warped, frozen="dynamics")
    config = load_run_config(None, overrides + ["frames.closed_loop=0"], stage="frames")
    grown = build_model(config).eval()
    small, previous = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(grown.decoder(small, previous), source.decoder(small, previous), atol=1e-4)
    run_stage(config)
    after = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    assert after["decoder.flow.weight"].abs().sum() > 0  # the field learnt (from zero)
    assert WorldModel.from_pretrained(tmp_path / "run" / "model").config.decoder.warp == "gated"


def test_the_noise_levels_go_down_to_zero_and_bad_step_counts_are_named():
    for steps in (1, 3, 10):
        sigmas = sigma_schedule(steps)
        assert len(sigmas) == steps + 1 and sigmas[0] == pytest.approx(SIGMA_MAX) and sigmas[-1] == 0
        assert all(a > b for a, b in zip(sigmas, sigmas[1:]))
    data = frames_config().to_dict()
    data["dynamics"]["denoise_steps"] = -1
    with pytest.raises(ConfigError, match="denoise_steps"):
        WorldModelConfig.from_dict(data)


def test_a_session_dream_of_a_denoiser_replays_from_its_seed():
    """The denoiser's noise comes from the session's generator: the same level seed plays the same dream."""
    from core.session import WorldSession

    torch.manual_seed(0)
    model = WorldModel(frames_config(denoise_steps=2))
    for p in model.dynamics.parameters():  # zero-initialised outputs would ignore the noise
        p.data.add_(0.5 * torch.randn_like(p))
    dreams = []
    for seed in (200020, 200020, 200039):
        session = WorldSession(model)
        session.reset(first_frame=np.full((256, 256, 3), 90, np.uint8), seed=seed)
        predictions = []
        for _ in range(3):
            session.step("RIGHT")
            predictions.append(session.prediction)  # the dynamics' small frame: its noise shows there first
        dreams.append(torch.cat(predictions))
    assert torch.equal(dreams[0], dreams[1]) and not torch.allclose(dreams[0], dreams[2])


def test_a_denoiser_told_its_context_noise_grows_from_one_that_was_not_and_learns_to_read_it(tmp_path):
    """dynamics.context_level (GameNGen's noise augmentation): grown from a trained denoiser, the level's input
    starts at zero, so it samples as that did from the same noise; trained on context frames under noise of a
    known level (frames.context_noise), it learns to read the level."""

    from safetensors.torch import load_file

    from core.train import run_stage
    from core.train.config import load_run_config
    from core.train.loop import build_model

    source, overrides = growth_run(
        tmp_path, frames_config(denoise_steps=3), frames_config(denoise_steps=3, context_level=True)
    )
    config = load_run_config(None, overrides + ["frames.context_noise=0.3"], stage="frames")
    grown = build_model(config).eval()
    context, keys = torch.rand(3, 2, 3, 16, 16) * 2 - 1, torch.randint(0, 18, (3, 4))
    with torch.no_grad():
        before = source.dynamics.predict(context, keys, torch.Generator().manual_seed(1))
        assert torch.allclose(
            grown.dynamics.predict(context, keys, torch.Generator().manual_seed(1)), before, atol=1e-5
        )
    run_stage(config)
    after = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    assert after["dynamics.denoiser.context_level_in.weight"].abs().sum() > 0


def test_play_noise_on_the_context_is_drawn_from_the_seed_and_needs_the_level_input():
    torch.manual_seed(0)
    model = WorldModel(frames_config(denoise_steps=2, context_level=True, play_context_noise=0.2)).dynamics
    for p in model.parameters():
        p.data.add_(0.2 * torch.randn_like(p))
    context, keys = torch.rand(2, 2, 3, 16, 16) * 2 - 1, torch.randint(0, 18, (2, 4))
    with torch.no_grad():
        a, b, c = (model.predict(context, keys, torch.Generator().manual_seed(s)) for s in (5, 5, 6))
        model.config.play_context_noise = 0.0
        clean = model.predict(context, keys, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.allclose(a, c) and not torch.allclose(a, clean)
    for bad, match in (
        ({"context_level": True}, "needs a denoiser"),
        ({"denoise_steps": 2, "play_context_noise": 0.1}, "only with dynamics.context_level"),
        ({"denoise_steps": 2, "context_level": True, "play_context_noise": 1.5}, "must be 0 to 1"),
    ):
        data = frames_config().to_dict()
        data["dynamics"].update(bad)
        with pytest.raises(ConfigError, match=match):
            WorldModelConfig.from_dict(data)
