"""Play-speed benchmark: frames/s, keypress-to-frame latency and peak memory of a WorldSession.

Random weights are fine for speed: the work per step does not depend on their values.
The thread count is set explicitly and reported, because on a shared 2-core machine it
decides the result (FIELD-NOTES).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from core.config import zoo_config
from core.session import WorldSession
from core.world_model import WorldModel

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass
class PlayBenchResult:
    variant: str
    precision: str
    threads: int
    device: str
    steps: int
    fps: float              # frames per second over the timed steps (1 / mean step time)
    latency_ms_p50: float   # time from step(action) to the returned frame, median
    latency_ms_p95: float
    peak_rss_mb: float      # peak resident memory of this process
    cpu: str


def bench_play(variant: str, steps: int = 100, threads: int = 2, precision: str = "fp32",
               warmup: int = 5, device: str = "cpu", progress: bool = True) -> PlayBenchResult:
    if steps < 1 or warmup < 0:
        raise ValueError("steps must be >= 1 and warmup >= 0")
    session, actions = _bench_session(variant, threads, precision, device)
    latencies = []
    from tqdm import tqdm
    for i in tqdm(range(warmup + steps), desc=f"bench play {variant}", disable=not progress, leave=False):
        start = time.perf_counter()
        session.step(int(actions[i % len(actions)]))
        if device != "cpu":
            torch.cuda.synchronize()
        if i >= warmup:
            latencies.append(time.perf_counter() - start)
    latencies_ms = np.array(latencies) * 1000
    return PlayBenchResult(
        variant=variant, precision=precision, threads=threads, device=device, steps=steps,
        fps=round(float(1000 / latencies_ms.mean()), 2),
        latency_ms_p50=round(float(np.percentile(latencies_ms, 50)), 2),
        latency_ms_p95=round(float(np.percentile(latencies_ms, 95)), 2),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        cpu=platform.processor() or platform.machine(),
    )


def profile_play(variant: str, steps: int = 20, threads: int = 2, precision: str = "fp32", device: str = "cpu") -> str:
    """Where a play step's time goes: the session's parts (dynamics, sampling, decoder) and the
    heaviest operators, as torch.profiler tables."""
    session, actions = _bench_session(variant, threads, precision, device)
    for action in actions[:3]:
        session.step(int(action))
    with torch.profiler.profile() as profiler:
        for i in range(steps):
            session.step(int(actions[i % len(actions)]))
    table = profiler.key_averages()
    parts = [e for e in table if e.key in ("dynamics", "sampling", "decoder")]
    lines = [f"{'part':<10} {'ms/step':>8}"] + [f"{e.key:<10} {e.cpu_time_total / 1000 / steps:>8.2f}" for e in parts]
    return "\n".join(lines) + "\n\n" + table.table(sort_by="self_cpu_time_total", row_limit=12)


def _bench_session(variant, threads, precision, device):
    if threads < 1:
        raise ValueError("threads must be >= 1")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = WorldModel(zoo_config(variant)).to(device=device, dtype=PRECISIONS[precision])
    session = WorldSession(model, device=device)
    rng = np.random.default_rng(0)
    session.reset(rng.integers(0, 256, (model.config.image_size,) * 2 + (3,), dtype=np.uint8))
    return session, rng.integers(0, 18, 256)


def write_json(result, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(asdict(result), indent=2) + "\n")
    os.replace(tmp, path)
