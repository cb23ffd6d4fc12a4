"""Play-speed benchmark: frames/s, keypress-to-frame latency, peak memory and the quality cost of a
WorldSession under each engine (precision and decoder backend, core.engine).

Speed does not depend on the weights' values (but for a motion net's, which runs the denoiser and
upsampler only for a frame with squares to redraw), so random weights are used where no trained
ones are, and every run starts from the first frame of a held-out platformer level, as a user
does (not from noise, on which a motion net redraws everything). The quality cost depends on the
weights, so it is measured against the plain fp32 path on the same start and actions, with the
decoder's zero-initialised output layer perturbed when the weights are random (else every decoder
draws the previous frame and any two engines agree). Each engine of a `bench_play_many` runs in a
fresh process, so peak memory is its own. The thread count is set explicitly and reported,
because on a shared 2-core machine it decides the result.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from core import zoo
from core.config import zoo_config
from core.engine import EngineConfig, default_engine
from core.session import WorldSession
from core.world_model import WorldModel

# `--precision all`: the engines worth comparing on each device (onnx only where onnxruntime imports)
CPU_ENGINES = ("fp32", "fp32+onnx", "int8", "int8+onnx", "bf16")
CUDA_ENGINES = ("fp32", "bf16", "int8", "nf4")


@dataclass
class PlayBenchResult:
    variant: str
    precision: str  # the engine: fp32, int8, int8+onnx, ... (core.engine.EngineConfig.name)
    threads: int
    device: str
    weights: str  # "trained" (the zoo's) or "random"
    steps: int
    fps: float  # frames per second over the timed steps (1 / mean step time)
    latency_ms_p50: float  # time from step(action) to the returned frame, median
    latency_ms_p95: float
    peak_rss_mb: float  # peak resident memory of this process (one process per engine)
    psnr_vs_fp32: float | None  # dB, frames of a rollout vs the plain fp32 path; None: identical
    token_agreement: float | None  # share of the rollout's token ids equal to the fp32 path's (None: a frames
    # model, which has no token ids: its small frames are compared through the frames' PSNR)
    quality_steps: int  # length of that rollout
    prepare_s: float  # time to prepare the engine (quantize, export): the wait before a first frame
    cpu: str


def engines_for(precision: str, device: str = "cpu") -> list[str]:
    """'all', one engine name or a comma-separated list -> engine names (each checked)."""
    if precision == "all":
        names = list(CUDA_ENGINES if device.startswith("cuda") else CPU_ENGINES)
        if default_engine().decoder != "onnx":  # onnxruntime is not installed
            names = [name for name in names if not name.endswith("+onnx")]
    else:
        names = [name.strip() for name in precision.split(",") if name.strip()]
    for name in names:
        EngineConfig.parse(name)  # an unknown name fails before any work
    return names


def bench_play(
    variant: str,
    steps: int = 100,
    threads: int = 2,
    precision: str = "fp32",
    warmup: int = 5,
    device: str = "cpu",
    progress: bool = True,
    quality_steps: int = 30,
) -> PlayBenchResult:
    if steps < 1 or warmup < 0 or quality_steps < 1:
        raise ValueError("steps and quality_steps must be >= 1 and warmup >= 0")
    engine = EngineConfig.parse(precision)
    model, weights = _bench_model(variant, threads, device)
    start, actions = _start_and_actions()
    started = time.perf_counter()
    session = WorldSession(model, device=device, engine=engine)
    prepare_s = time.perf_counter() - started
    psnr, agreement = _quality(model, session, start, actions[:quality_steps], device)
    session.reset(start)
    latencies = []
    from tqdm import tqdm

    for i in tqdm(range(warmup + steps), desc=f"bench play {variant} {precision}", disable=not progress, leave=False):
        begin = time.perf_counter()
        session.step(int(actions[i % len(actions)]))
        if device != "cpu":
            torch.cuda.synchronize()
        if i >= warmup:
            latencies.append(time.perf_counter() - begin)
    latencies_ms = np.array(latencies) * 1000
    return PlayBenchResult(
        variant=variant,
        precision=engine.name,
        threads=threads,
        device=device,
        weights=weights,
        steps=steps,
        fps=round(float(1000 / latencies_ms.mean()), 2),
        latency_ms_p50=round(float(np.percentile(latencies_ms, 50)), 2),
        latency_ms_p95=round(float(np.percentile(latencies_ms, 95)), 2),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        psnr_vs_fp32=psnr,
        token_agreement=None if agreement is None else round(agreement, 4),
        quality_steps=quality_steps,
        prepare_s=round(prepare_s, 2),
        cpu=platform.processor() or platform.machine(),
    )


def bench_play_many(variant: str, engines: list[str], **kwargs) -> list[PlayBenchResult]:
    """bench_play for each engine, each in a fresh process (its own peak memory, no thread pools
    or allocator state left over from the engine before)."""
    results = []
    for engine in engines:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            results.append(pool.submit(bench_play, variant, precision=engine, **kwargs).result())
    return results


def profile_play(variant: str, steps: int = 20, threads: int = 2, precision: str = "fp32", device: str = "cpu") -> str:
    """Where a play step's time goes: the session's parts (dynamics, sampling, decoder) and the
    heaviest operators, as torch.profiler tables."""
    model, _ = _bench_model(variant, threads, device)
    session = WorldSession(model, device=device, engine=EngineConfig.parse(precision))
    start, actions = _start_and_actions()
    session.reset(start)
    for action in actions[:3]:
        session.step(int(action))
    with torch.profiler.profile() as profiler:
        for i in range(steps):
            session.step(int(actions[i % len(actions)]))
    table = profiler.key_averages()
    parts = [e for e in table if e.key in ("dynamics", "sampling", "decoder")]
    lines = [f"{'part':<10} {'ms/step':>8}"] + [f"{e.key:<10} {e.cpu_time_total / 1000 / steps:>8.2f}" for e in parts]
    return "\n".join(lines) + "\n\n" + table.table(sort_by="self_cpu_time_total", row_limit=12)


def _bench_model(variant, threads, device) -> tuple[WorldModel, str]:
    if threads < 1:
        raise ValueError("threads must be >= 1")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if zoo.weights_available(variant):
        return zoo.load(variant).to(device), "trained"
    model = WorldModel(zoo_config(variant)).to(device)
    with torch.no_grad():
        model.decoder.to_rgb.weight.normal_(std=0.05)  # random weights: make the frame depend on the tokens
    return model, "random"


def _start_and_actions():
    """-> (a held-out platformer level's first frame, 256 random keys); every zoo variant plays 256x256 frames,
    and the session checks the size."""
    from core.control.keys import HELD_OUT_SEEDS
    from core.games import first_frame

    return first_frame("platformer", HELD_OUT_SEEDS[0]), np.random.default_rng(0).integers(0, 18, 256)


def _quality(model, session, start, actions, device) -> tuple[float | None, float]:
    """PSNR (dB; None when identical) and token agreement (None for a frames model) of `session`'s rollout vs
    the plain fp32 path's."""

    def rollout(player):
        player.reset(start)
        frames, tokens = [], []
        for action in actions:
            frames.append(player.step(int(action)))
            tokens.append(player._tokens.clone())
        return np.stack(frames).astype(np.float64), torch.stack(tokens)

    reference_frames, reference_tokens = rollout(WorldSession(model, device=device))
    frames, tokens = rollout(session)
    mse = float(((frames - reference_frames) ** 2).mean())
    psnr = None if mse == 0 else round(10 * np.log10(255**2 / mse), 2)
    if model.config.family != "tokens":
        return psnr, None
    return psnr, (tokens == reference_tokens).float().mean().item()


def write_json(results, path: str | Path) -> None:
    """One result as an object, several as a list of objects."""
    data = [asdict(r) for r in results] if isinstance(results, list) else asdict(results)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
