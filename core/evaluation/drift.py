"""Long-horizon drift: quality against time, Genie's controllability, and the drift-free horizon.

- drift curve: mean PSNR/SSIM of free-rollout frame t against real frame t, per step,
  summarised at 1, 10, 30, 60 and 120 s (30 FPS) where the real play is that long;
- controllability (Genie, Bruce et al. 2024, delta_t PSNR): PSNR of rollouts under the real
  actions minus PSNR under random actions, at t = 4, 16, 64; > 0 means the actions matter;
- drift-free horizon: how long generated frames stay inside the band real frames occupy on
  two per-frame quality signals that need no ground truth at time t.

The first signal is *palette fidelity*: the share of a frame's pixels whose colour (within a small
tolerance) appears in the episode's first real frame, the frame the rollout starts from.
Why this signal: 2D games (ours, and Atari) draw from a small fixed palette per level, so
real frames score ~1 all along (only a sprite that was off screen at the start brings a new
colour); the typical drift of token world models -- blur, colour bleeding, noise, smeared
sprites -- creates colours between palette entries and drives it down. It needs no network
(an evaluated model's own tokenizer would judge its own artefacts kindly) and no real frame
at time t, so a rollout that diverged from the recording in content yet still looks like the
game is not called drifted (PSNR against the recording would). It does not catch a frozen
world; the drift curve and the controllability delta do.

The second is *patch fidelity*: the share of a frame's 8x8 patches (every 4 px) that occur, anywhere, in the
first real frame. A model that moves the last frame's pixels (a motion net) never makes a new colour, however it
tears: a torn sprite, a wall with a gap or a streak are new arrangements of old colours, which palette fidelity
cannot see and patches do. Real frames stay high (a level repeats its tiles, and a sprite on the same
background is the same patch): 0.96-0.995 over 10 s of our held-out play, where the shipped motion nano's maze
falls to 0.95 within 1 s. A frame is out of band when either signal is below the band's floor at its time: the
lowest the same episode's real frames score within BAND_SPAN frames of it. Real play can leave its first frame
behind (a new level shares no patch with the old one), and one floor for all frames then fell to the new level's
score and held no frame out; a floor that follows the real play stops judging only where the real frames, too,
no longer look like the first one.
"""

from __future__ import annotations

import numpy as np

FPS = 30
HORIZONS_S = (1, 10, 30, 60, 120)  # drift curve summary points, seconds
CONTROL_STEPS = (4, 16, 64)  # Genie's delta-PSNR steps
BITS = 4  # palette colours are compared on a 16-level-per-channel grid...
DRIFT_WINDOW = FPS  # ...and drift starts at the first 1 s window...
DRIFT_SHARE = 0.5  # ...in which more than half the frames are out of band
BAND_SPAN = FPS  # the band's floor at a frame: the lowest real fidelity within this many frames either side
PATCH = 8  # px: the patches patch fidelity compares...
PATCH_STRIDE = 4  # ...taken every this many px of a generated frame (every 1 px of the first real frame)
_PATCH_WEIGHTS = np.random.default_rng(0).integers(1, 2**63, (PATCH, PATCH, 3), dtype=np.uint64)


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


def _patch_hashes(frame: np.ndarray, stride: int) -> np.ndarray:
    """(H, W, 3) uint8 -> a 64-bit hash of each PATCH x PATCH patch every `stride` px, colours on the palette's
    16-level grid (a weighted sum that wraps around: equal patches hash alike, others all but surely not)."""
    q = (frame >> (8 - BITS)).astype(np.uint64)
    rows, cols = (frame.shape[0] - PATCH) // stride + 1, (frame.shape[1] - PATCH) // stride + 1
    hashes = np.zeros((rows, cols), np.uint64)
    for dy in range(PATCH):
        for dx in range(PATCH):
            window = q[dy : dy + stride * (rows - 1) + 1 : stride, dx : dx + stride * (cols - 1) + 1 : stride]
            hashes += (window * _PATCH_WEIGHTS[dy, dx]).sum(-1)
    return hashes.ravel()


def patches_of(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> the sorted hashes of every patch of a frame, at every pixel offset."""
    return np.unique(_patch_hashes(frame, 1))


def patch_fidelity(frames: np.ndarray, patches: np.ndarray) -> np.ndarray:
    """frames uint8 (N, H, W, 3) -> (N,) share of each frame's patches (every PATCH_STRIDE px) in `patches`."""
    return np.array([np.isin(_patch_hashes(f, PATCH_STRIDE), patches).mean() for f in frames])


# each signal: what it keeps of the first real frame, and how it scores frames against that
SIGNALS = {"palette_fidelity": (palette_of, palette_fidelity), "patch_fidelity": (patches_of, patch_fidelity)}


def references(first_frame: np.ndarray) -> dict:
    """What every signal keeps of an episode's first real frame, by signal name."""
    return {name: keep(first_frame) for name, (keep, _) in SIGNALS.items()}


def fidelities(frames: np.ndarray, start: dict) -> dict[str, np.ndarray]:
    """frames uint8 (N, H, W, 3) -> each signal's (N,) scores against `start`, references() of the first frame."""
    return {name: score(frames, start[name]) for name, (_, score) in SIGNALS.items()}


def band_floors(real_fidelity: np.ndarray) -> np.ndarray:
    """One episode's real frames' fidelity (T,) -> (T,) the band's floor at each time: the lowest real fidelity
    within BAND_SPAN frames of it (a real frame may dip where a sprite enters; the band allows what real play
    near that time does)."""
    real = np.asarray(real_fidelity, dtype=np.float64)
    padded = np.pad(real, BAND_SPAN, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * BAND_SPAN + 1).min(1)


def drift_free_frames(out_of_band: np.ndarray) -> tuple[int, bool]:
    """(frames before drift starts, whether it drifted at all) for one rollout's frames out of band (T,) bool.

    Drift starts at the first window of DRIFT_WINDOW frames with more than DRIFT_SHARE of them
    out of band; a single odd frame does not end the horizon, a lasting departure does."""
    out = np.asarray(out_of_band, dtype=np.float64)
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
