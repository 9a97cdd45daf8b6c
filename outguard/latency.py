"""A bounded record of recent latencies with percentiles, for benchmarks and /metrics."""

from __future__ import annotations

import math
from collections import deque


class LatencyRecorder:
    """Keeps the last ``size`` samples (seconds) and running totals."""

    def __init__(self, size: int = 100_000) -> None:
        self.samples: deque[float] = deque(maxlen=size)
        self.count = 0
        self.total = 0.0

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)
        self.count += 1
        self.total += seconds

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0-100) of the kept samples, nearest rank."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
        return ordered[rank]

    def clear(self) -> None:
        self.samples.clear()
        self.count = 0
        self.total = 0.0
