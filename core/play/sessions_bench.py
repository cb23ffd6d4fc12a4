"""The play app's load test (`pocketworld bench sessions`): N play sessions stepping concurrently,
each one's frames/s reported.

Each session runs in its own thread as a browser tab's requests do in the app (Gradio runs
handlers in a thread pool). With `step_concurrency=1` the steps take turns through one lock,
as the app's default `--step-concurrency 1` queue makes them; with 0 they all run at once.
Random weights are fine: the work per step does not depend on their values (as in core.bench).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from core.config import zoo_config
from core.games import first_frame
from core.play.play_session import PlaySession
from core.world_model import WorldModel

KEY_CHOICES = ([], ["arrowleft"], ["arrowright"], ["arrowup"], ["space"], ["arrowright", "space"])


@dataclass
class SessionsResult:
    variant: str
    sessions: int
    threads: int
    step_concurrency: int  # 1: steps take turns (the app's default); 0: all at once
    seconds: float
    fps_per_session: list[float]
    fps_min: float
    fps_mean: float
    fps_total: float
    step_ms_p95: float  # worst session's p95 step latency (time inside step, excluding the wait for the lock)


def bench_sessions(
    variant: str,
    sessions: int,
    seconds: float = 10.0,
    threads: int = 2,
    step_concurrency: int = 1,
    model: WorldModel | None = None,
) -> SessionsResult:
    if sessions < 1 or seconds <= 0 or threads < 1 or step_concurrency not in (0, 1):
        raise ValueError("sessions and threads must be >= 1, seconds > 0, step_concurrency 0 or 1")
    torch.set_num_threads(threads)
    if model is None:
        torch.manual_seed(0)
        model = WorldModel(zoo_config(variant)).eval()
    players = [PlaySession(model, variant, first_frame("platformer", i), f"level {i}") for i in range(sessions)]
    turn = threading.Lock() if step_concurrency == 1 else None
    frames = [0] * sessions
    deadline = time.monotonic() + seconds

    def play(index: int) -> None:
        rng = np.random.default_rng(index)
        while time.monotonic() < deadline:
            keys = KEY_CHOICES[int(rng.integers(len(KEY_CHOICES)))]
            with turn if turn is not None else contextlib.nullcontext():
                players[index].step(keys)
            frames[index] += 1

    workers = [threading.Thread(target=play, args=(i,)) for i in range(sessions)]
    start = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - start
    fps = [round(count / elapsed, 2) for count in frames]
    return SessionsResult(
        variant=variant,
        sessions=sessions,
        threads=threads,
        step_concurrency=step_concurrency,
        seconds=round(elapsed, 2),
        fps_per_session=fps,
        fps_min=min(fps),
        fps_mean=round(float(np.mean(fps)), 2),
        fps_total=round(sum(fps), 2),
        step_ms_p95=max(player.stats.latency_ms(95) for player in players),
    )
