"""Frames/s and step latency of a play session over a sliding window of recent frames.

The window is short (a few seconds) so the numbers shown while playing follow what the player
sees now, not an average since the start.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass
class StatsConfig:
    window_s: float = 3.0  # frames/s counts the frames shown in the last window_s seconds
    max_samples: int = 512  # latency percentiles use at most this many recent steps


class FrameStats:
    def __init__(self, config: StatsConfig | None = None):
        self.config = config or StatsConfig()
        self._times: deque[float] = deque(maxlen=self.config.max_samples)  # when each frame was ready (s)
        self._latencies: deque[float] = deque(maxlen=self.config.max_samples)  # step time of each frame (ms)

    def add(self, finished_at: float, latency_ms: float) -> None:
        self._times.append(finished_at)
        self._latencies.append(latency_ms)

    def fps(self, now: float) -> float:
        """Frames finished in the last window, per second (0 before two frames)."""
        recent = [t for t in self._times if now - t <= self.config.window_s]
        if len(recent) < 2:
            return 0.0
        # Frames over the span they cover (not the whole window), so the first seconds read right.
        span = max(now - recent[0], recent[-1] - recent[0])
        return (len(recent) - 1) / span if span > 0 else 0.0

    def latency_ms(self, percentile: float) -> float:
        """A percentile (0-100) of recent step latencies in ms (0 before the first step)."""
        if not self._latencies:
            return 0.0
        return float(np.percentile(np.fromiter(self._latencies, float), percentile))

    def summary(self, now: float) -> dict:
        """Frames/s and step-latency percentiles; the latencies are None before the first step (nothing measured)."""
        measured = bool(self._latencies)
        return {
            "fps": round(self.fps(now), 1),
            "step_ms_p50": round(self.latency_ms(50), 1) if measured else None,
            "step_ms_p95": round(self.latency_ms(95), 1) if measured else None,
        }
