"""Image quality against scikit-image, and the drift measurements on known cases."""

import numpy as np
import pytest
from evaluation_play import play_platformer
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from core.evaluation import drift
from core.evaluation.image_quality import PSNR_CAP, psnr, ssim


def _pair(seed=0, size=48):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    noise = rng.integers(-40, 41, a.shape)
    return a, np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)


def test_psnr_ssim_match_scikit_image():
    real, generated = _pair()
    shifted = np.roll(real, 3, axis=2)  # a known case: the same frame shifted 3 px
    for other in (generated, shifted):
        ours_p, ours_s = psnr(real, other), ssim(real, other)
        for i in range(len(real)):
            assert ours_p[i] == pytest.approx(peak_signal_noise_ratio(real[i], other[i], data_range=255), abs=1e-4)
            reference = structural_similarity(
                real[i],
                other[i],
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=255,
                channel_axis=-1,
            )
            assert ours_s[i] == pytest.approx(reference, abs=1e-5)


def test_identical_frames_score_the_cap_and_one():
    real, _ = _pair()
    assert np.all(psnr(real, real) == PSNR_CAP)
    assert np.allclose(ssim(real, real), 1.0)


def test_quality_inputs_are_checked():
    real, generated = _pair()
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(real, generated[:2])
    with pytest.raises(ValueError, match="uint8"):
        ssim(real.astype(np.float32), generated)


def test_palette_fidelity_separates_real_from_drifted_frames():
    frames = play_platformer(seed=11, frames=90)[0]
    palette = drift.palette_of(frames[0])
    real = drift.palette_fidelity(frames, palette)
    assert real.min() > 0.98
    noisy = np.clip(frames[:10] + np.random.default_rng(0).normal(0, 25, frames[:10].shape), 0, 255).astype(np.uint8)
    assert drift.palette_fidelity(noisy, palette).max() < 0.8
    assert drift.drift_free_frames(real < drift.band_floors(real)) == (len(real), False)


def test_patch_fidelity_sees_a_torn_sprite_that_palette_fidelity_cannot():
    frames = play_platformer(seed=11, frames=90)[0]
    patches, palette = drift.patches_of(frames[0]), drift.palette_of(frames[0])
    real = drift.patch_fidelity(frames, patches)
    assert real.min() > 0.95  # the level scrolls on, built of the tiles the first frame shows
    # the first frame's pixels torn apart: 4x4 squares of its own pixels shuffled, colours all kept
    torn = frames[0].reshape(64, 4, 64, 4, 3).swapaxes(1, 2).reshape(4096, 4, 4, 3).copy()
    moving = np.flatnonzero(torn.reshape(4096, -1).std(1) > 0)  # the squares with something drawn in them
    torn[moving] = torn[np.random.default_rng(0).permutation(moving)]
    torn = torn.reshape(64, 64, 4, 4, 3).swapaxes(1, 2).reshape(256, 256, 3)[None]
    assert drift.palette_fidelity(torn, palette)[0] == 1.0  # no new colour: palette fidelity is blind to it
    assert drift.patch_fidelity(torn, patches)[0] < drift.band_floors(real).min() - 0.05


def test_the_band_follows_real_play_that_leaves_its_first_frame_behind():
    """A recording that changes level at frame 300: its real frames share little with the first frame from then
    on. A rollout torn from frame 100 on is out of band there, though its fidelity is far above what the real
    frames score after the level change (one floor for the whole recording held it in band to the end)."""
    real = np.r_[np.full(300, 0.99), np.full(300, 0.45)]
    torn = np.r_[np.full(100, 0.99), np.full(500, 0.80)]
    floors = drift.band_floors(real)
    assert floors[:270].min() == 0.99 and floors[331:].max() == 0.45  # the real frames within 1 s, either side
    frames, drifted = drift.drift_free_frames(torn < floors)
    assert drifted and 70 <= frames <= 100  # the first second in which most frames are out of band
    kept = np.r_[np.full(300, 0.99), np.full(300, 0.99)]  # a rollout that stays in the first level
    assert drift.drift_free_frames(kept < floors) == (600, False)


def test_drift_free_horizon_needs_a_lasting_departure():
    out = np.zeros(200, bool)
    out[[10, 40, 41]] = True  # isolated odd frames: not drift
    assert drift.drift_free_frames(out) == (200, False)
    out[90:] = True  # a lasting departure from frame 90
    frames, drifted = drift.drift_free_frames(out)
    assert drifted and 70 <= frames <= 90


def test_curve_summary_and_controllability():
    counts = np.full(45, 2)
    curve = {"psnr": np.linspace(40, 20, 45), "ssim": np.linspace(1, 0.5, 45)}
    summary = drift.summarise_curve(curve, counts)
    assert summary["1s"]["psnr"] == pytest.approx(curve["psnr"][29], abs=1e-3)
    assert summary["10s"].startswith("not reached")
    control = drift.controllability({4: [30.0, 32.0], 16: [25.0]}, {4: [20.0, 22.0], 16: [25.0]})
    assert control["t=4"]["delta_psnr"] == pytest.approx(10.0)
    assert control["t=16"]["delta_psnr"] == 0.0
    assert control["t=64"].startswith("not reached")
