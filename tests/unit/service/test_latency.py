from __future__ import annotations

import pytest

from outguard.latency import LatencyRecorder


@pytest.mark.parametrize(("q", "expected"), [(0, 1), (50, 50), (99, 99), (100, 100)])
def test_percentiles_are_nearest_rank(q: float, expected: int) -> None:
    rec = LatencyRecorder()
    for value in range(100, 0, -1):
        rec.add(value)
    assert rec.percentile(q) == expected


def test_empty_recorder_has_no_percentile_and_keeps_only_the_last_samples() -> None:
    rec = LatencyRecorder(size=3)
    assert rec.percentile(50) is None
    for value in (10, 1, 2, 3):
        rec.add(value)
    assert rec.percentile(100) == 3
    assert rec.count == 4 and rec.total == 16
