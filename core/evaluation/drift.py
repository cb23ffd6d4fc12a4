"""Long-horizon drift: quality against time, Genie's controllability, and the drift-free horizon.

- drift curve: mean PSNR/SSIM of free-rollout frame t against real frame t, per step,
  summarised at 1, 10, 30, 60 and 120 s (30 FPS) where the real play is that long;
- controllability (Genie, Bruce et al. 2024, delta_t PSNR): PSNR of rollouts under the real
  actions minus PSNR under random actions, at t = 4, 16, 64; > 0 means the actions matter;
- drift-free horizon: how long generated frames stay inside the band real frames occupy on
  a per-frame quality signal that needs no ground truth at time t.

The signal is *palette fidelity*: the share of a frame's pixels whose colour (within a small
tolerance) appears in the episode's first real frame, the frame the rollout starts from.
Why this signal: 2D games (ours, and Atari) draw from a small fixed palette per level, so
real frames score ~1 all along (only a sprite that was off screen at the start brings a new
colour); the typical drift of token world models -- blur, colour bleeding, noise, smeared
sprites -- creates colours between palette entries and drives it down. It needs no network
(an evaluated model's own tokenizer would judge its own artefacts kindly) and no real frame
at time t, so a rollout that diverged from the recording in content yet still looks like the
game is not called drifted (PSNR against the recording would). It does not catch a frozen
world; the drift curve and the controllability delta do.
"""

from __future__ import annotations

import numpy as np

FPS = 30
HORIZONS_S = (1, 10, 30, 60, 120)  # drift curve summary points, seconds
CONTROL_STEPS = (4, 16, 64)  # Genie's delta-PSNR steps
BITS = 4  # palette colours are compared on a 16-level-per-channel grid...
DRIFT_WINDOW = FPS  # ...and drift starts at the first 1 s window...
DRIFT_SHARE = 0.5  # ...in which more than half the frames are out of band
BAND_QUANTILE = 0.01  # the band's floor: this quantile of real frames' fidelity


def palette_of(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (16, 16, 16) bool table of the colour cells a frame uses, widened by one
    cell in every direction (a tolerance of 16-32 levels per channel)."""
    cells = np.zeros((1 << BITS,) * 3, bool)
    q = frame.reshape(-1, 3) >> (8 - BITS)
    cells[q[:, 0], q[:, 1], q[:, 2]] = True
    padded = np.pad(cells, 1)
    widened = np.zeros_like(cells)
    for dr in range(3):
        for dg in range(3):
            for db in range(3):
                widened |= padded[dr : dr + cells.shape[0], dg : dg + cells.shape[1], db : db + cells.shape[2]]
    return widened


def palette_fidelity(frames: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """frames uint8 (N, H, W, 3) -> (N,) share of pixels whose colour cell is in `palette`."""
    q = frames.reshape(len(frames), -1, 3) >> (8 - BITS)
    return palette[q[..., 0], q[..., 1], q[..., 2]].mean(1)


def band_floor(real_fidelity: np.ndarray) -> float:
    """The lowest fidelity real frames reach (their 1% quantile): below it a frame is out of band."""
    return float(np.quantile(real_fidelity, BAND_QUANTILE))


def drift_free_frames(fidelity: np.ndarray, floor: float) -> tuple[int, bool]:
    """(frames before drift starts, whether it drifted at all) for one rollout's fidelity (T,).

    Drift starts at the first window of DRIFT_WINDOW frames with more than DRIFT_SHARE of them
    below the band; a single odd frame does not end the horizon, a lasting departure does."""
    out = (np.asarray(fidelity) < floor).astype(np.float64)
    if len(out) < DRIFT_WINDOW:
        return (len(out), False) if out.mean() <= DRIFT_SHARE else (0, True)
    share = np.convolve(out, np.ones(DRIFT_WINDOW) / DRIFT_WINDOW, mode="valid")  # (T - W + 1,)
    bad = np.flatnonzero(share > DRIFT_SHARE)
    return (int(bad[0]), True) if len(bad) else (len(out), False)


def summarise_curve(curve: dict[str, np.ndarray], counts: np.ndarray) -> dict:
    """Per-step mean curves (name -> (T,)) -> their values at each horizon the rollouts reached."""
    out = {}
    for seconds in HORIZONS_S:
        step = seconds * FPS
        if step <= len(counts) and counts[step - 1] > 0:
            out[f"{seconds}s"] = {name: round(float(values[step - 1]), 4) for name, values in curve.items()}
            out[f"{seconds}s"]["episodes"] = int(counts[step - 1])
        else:
            out[f"{seconds}s"] = f"not reached (longest rollout {len(counts) / FPS:.1f} s)"
    return out


def controllability(psnr_real: dict[int, list[float]], psnr_random: dict[int, list[float]]) -> dict:
    """Mean PSNR under real and random actions at each step -> Genie's delta per step."""
    out = {}
    for step in CONTROL_STEPS:
        if psnr_real.get(step):
            real, rand = float(np.mean(psnr_real[step])), float(np.mean(psnr_random[step]))
            out[f"t={step}"] = {
                "psnr_real_actions": round(real, 3),
                "psnr_random_actions": round(rand, 3),
                "delta_psnr": round(real - rand, 3),
                "episodes": len(psnr_real[step]),
            }
        else:
            out[f"t={step}"] = f"not reached (needs episodes of more than {step} frames)"
    return out
