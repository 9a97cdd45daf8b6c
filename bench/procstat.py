"""CPU, memory and machine figures from /proc, and the little statistics the report needs.

The parsers take text, so they are unit-tested without /proc; the readers are thin.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

# ---------------------------------------------------------------- per process


@dataclass(frozen=True, slots=True)
class ProcCpu:
    """utime+stime of a process (all its threads), and of its reaped children, in ticks."""

    own_ticks: int
    children_ticks: int
    rss_pages: int

    def seconds(self, with_children: bool = False) -> float:
        ticks = self.own_ticks + (self.children_ticks if with_children else 0)
        return ticks / CLK_TCK


def parse_pid_stat(text: str) -> ProcCpu:
    """Parse ``/proc/<pid>/stat``. The command name may hold spaces and parentheses, so
    fields are counted from the last ')'. Field numbers as in proc(5): utime 14, stime 15,
    cutime 16, cstime 17, rss 24."""
    rest = text[text.rindex(")") + 2:].split()
    field = lambda n: int(rest[n - 3])  # noqa: E731  rest[0] is field 3 (state)
    return ProcCpu(field(14) + field(15), field(16) + field(17), field(24))


def parse_ppid(text: str) -> int:
    """The parent pid (field 4) of a ``/proc/<pid>/stat`` line."""
    return int(text[text.rindex(")") + 2:].split()[1])


def read_children_cpu(parent: int) -> dict[int, int]:
    """Own CPU ticks (utime+stime) of ``parent`` and of each of its direct children, by
    pid (PostgreSQL: the postmaster, its backends and auxiliary processes)."""
    found: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8") as fh:
                text = fh.read()
            if int(name) == parent or parse_ppid(text) == parent:
                found[int(name)] = parse_pid_stat(text).own_ticks
        except (OSError, ValueError, IndexError):
            continue
    return found


def tree_cpu_delta(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU seconds the processes of ``after`` spent since ``before`` (both from
    ``read_children_cpu``): one born in between counts from zero; one gone in between is
    not counted (what it spent is lost with it: readings close around a step)."""
    return sum(max(0, ticks - before.get(pid, 0)) for pid, ticks in after.items()) / CLK_TCK


def read_pid_cpu(pid: int) -> ProcCpu | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return parse_pid_stat(fh.read())
    except (OSError, ValueError, IndexError):
        return None


def parse_status_kb(text: str, key: str) -> int | None:
    """A ``kB`` value of ``/proc/<pid>/status``, e.g. key ``VmRSS``."""
    for line in text.splitlines():
        if line.startswith(key + ":"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1])
    return None


def read_rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            return parse_status_kb(fh.read(), "VmRSS")
    except OSError:
        return None


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


# ---------------------------------------------------------------- the machine


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """The aggregate ``cpu`` line of /proc/stat, in ticks."""

    user: int
    nice: int
    system: int
    idle: int
    iowait: int
    irq: int
    softirq: int
    steal: int

    @property
    def total(self) -> int:
        return (self.user + self.nice + self.system + self.idle + self.iowait + self.irq
                + self.softirq + self.steal)


def parse_proc_stat(text: str) -> CpuTimes:
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            values += [0] * (8 - len(values))
            return CpuTimes(*values[:8])
    raise ValueError("no aggregate cpu line in /proc/stat")


def read_cpu_times() -> CpuTimes:
    with open("/proc/stat", encoding="utf-8") as fh:
        return parse_proc_stat(fh.read())


@dataclass(frozen=True, slots=True)
class CpuShare:
    """How the machine's CPU time was spent between two /proc/stat readings (0-1)."""

    busy: float
    steal: float
    idle: float


def cpu_share(before: CpuTimes, after: CpuTimes) -> CpuShare:
    total = after.total - before.total
    if total <= 0:
        return CpuShare(0.0, 0.0, 0.0)
    idle = (after.idle + after.iowait) - (before.idle + before.iowait)
    steal = after.steal - before.steal
    return CpuShare((total - idle - steal) / total, steal / total, idle / total)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        with open("/proc/loadavg", encoding="utf-8") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "?"


# ---------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0-100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x (e.g. RSS kB per second); None under two points."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return value / base
