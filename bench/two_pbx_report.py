"""The pure part of the two-PBX benchmark (``bench/two_pbx.py``): what a step is, when it
passes, the max calls/s of each variant and repetition, the ratios to the unscreened
baseline, and the Markdown section for bench/RESULTS.md. No process, no socket, no clock:
unit-tested in tests/unit/bench/test_two_pbx_report.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.procstat import median, percentile

BASELINE = "direct"
#: variant key -> what it is (the report's words)
VARIANT_LABELS = {
    "direct": "unscreened (agent-direct: straight to Dial())",
    "cluster": "screened: outguard ARI continue mode per PBX, caps reserved in the shared"
               " Redis, call log in the shared PostgreSQL",
    "cluster-unbatched": "as cluster, with the call feed appending and reading each event"
                         " as it comes (outguard.cluster.feed.LINGER_S = 0, as before"
                         " 2026-12-02 22:30)",
    "embedded": "screened: outguard ARI continue mode per PBX, each with its own SQLite store"
                " and caps in memory (the single-PBX default, for comparison)",
}
#: processes whose CPU a step measures, in report order
PROCESSES = ("asterisk-a", "asterisk-b", "outguard-a", "outguard-b", "redis", "postgres",
             "sipp")


@dataclass(frozen=True)
class Limits:
    """When a step passes: fewer than ``max_failed_share`` of its calls failed, at least
    ``min_offered_share`` of its rate was offered, and the post-dial delay's p99 is at most
    ``max_pdd_p99_ms`` (no PDD sample at all fails the step)."""

    max_failed_share: float = 0.01
    min_offered_share: float = 0.9
    max_pdd_p99_ms: float = 500.0


def step_verdict(rate: float, calls: int, failed: int, offered_cps: float | None,
                 pdd_p99_ms: float | None, timed_out: bool,
                 limits: Limits = Limits()) -> tuple[bool, str]:
    """(passed, why): why names every limit the step missed ("" when it passed)."""
    missed = []
    if timed_out:
        missed.append("SIPp ran past its time limit")
    if calls <= 0 or failed >= limits.max_failed_share * calls:
        missed.append(f"{failed} of {calls} calls failed (limit < {limits.max_failed_share:.0%})")
    if offered_cps is None or offered_cps < limits.min_offered_share * rate:
        offered = "unknown" if offered_cps is None else f"{offered_cps:.1f}"
        missed.append(f"offered {offered} calls/s of {rate:g} "
                      f"(limit >= {limits.min_offered_share:.0%})")
    if pdd_p99_ms is None or pdd_p99_ms > limits.max_pdd_p99_ms:
        pdd = "none" if pdd_p99_ms is None else f"{pdd_p99_ms:.0f} ms"
        missed.append(f"post-dial delay p99 {pdd} (limit <= {limits.max_pdd_p99_ms:.0f} ms)")
    return not missed, "; ".join(missed)


@dataclass
class Side:
    """One PBX's share of a step: its SIPp agent's calls and its capture."""

    pbx: str
    calls: int
    completed: int = 0
    finals: dict[str, int] = field(default_factory=dict)
    offered_cps: float | None = None
    pdd_ms: list[float] = field(default_factory=list)
    pdd_source: str = "pcap"
    timed_out: bool = False
    leaked_channels: int = 0

    @property
    def failed(self) -> int:
        return self.calls - self.completed


@dataclass
class Step:
    """One variant at one total rate, split evenly over both PBXes at once."""

    variant: str
    phase: str  # "warmup", "moderate", "search"
    rep: int
    rate: float  # total offered calls/s, both PBXes together
    sides: list[Side] = field(default_factory=list)
    seconds: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)  # PROCESSES -> CPU seconds
    busy: float = 0.0
    steal: float = 0.0
    drain_s: float = 0.0
    scripts: int = 0  # EVALSHA calls Redis served during the step
    handling_ms: list[float] = field(default_factory=list)  # StasisStart -> continue
    #: --diagnose: outguard's REST requests, decision and reservation by kind, ms
    stages_ms: dict[str, list[float]] = field(default_factory=dict)
    passed: bool = False
    why: str = ""

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.sides)

    @property
    def completed(self) -> int:
        return sum(s.completed for s in self.sides)

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.sides)

    @property
    def offered_cps(self) -> float | None:
        """The sum of each PBX's offered rate (None if either is unknown)."""
        rates = [s.offered_cps for s in self.sides]
        return None if not rates or any(r is None for r in rates) else sum(
            r for r in rates if r is not None)

    @property
    def pdd_ms(self) -> list[float]:
        return [d for s in self.sides for d in s.pdd_ms]

    @property
    def timed_out(self) -> bool:
        return any(s.timed_out for s in self.sides)

    @property
    def leaked_channels(self) -> int:
        return sum(s.leaked_channels for s in self.sides)

    def judge(self, limits: Limits = Limits()) -> None:
        self.passed, self.why = step_verdict(self.rate, self.calls, self.failed,
                                             self.offered_cps, percentile(self.pdd_ms, 99),
                                             self.timed_out, limits)

    def per_call_ms(self, process: str) -> float | None:
        """CPU milliseconds per completed call of one process (None: not measured)."""
        if not self.completed or process not in self.cpu_s:
            return None
        return self.cpu_s[process] / self.completed * 1000

    def summary(self) -> str:
        pdd = self.pdd_ms
        cpu = " ".join(f"{p} {self.per_call_ms(p):.2f}" for p in PROCESSES
                       if self.per_call_ms(p) is not None)
        return (f"{self.phase:8} rep {self.rep} {self.variant:7} {self.rate:5.0f} cps "
                f"x{self.calls}: {'PASS' if self.passed else 'FAIL'} failed {self.failed} "
                f"offered {self.offered_cps or 0:.1f} cps, pdd p50/p99 "
                f"{percentile(pdd, 50) or 0:.1f}/{percentile(pdd, 99) or 0:.1f} ms, "
                f"cpu ms/call {cpu}, busy {self.busy:.0%}, steal {self.steal:.0%}"
                + (f", scripts/call {self.scripts / self.completed:.2f}"
                   if self.scripts and self.completed else "")
                + (f" ({self.why})" if self.why else ""))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        body = dict(data)
        body["sides"] = [Side(**s) for s in body.get("sides", [])]
        return cls(**body)


# ---------------------------------------------------------------- figures


@dataclass(frozen=True)
class Maximum:
    """A variant's max calls/s in one repetition: the highest rate it passed before its
    first failed step (None: it failed the first rate); ``capped`` when it never failed
    (the search ran out of rates or of time: the true maximum is higher)."""

    rate: float | None
    capped: bool

    def text(self) -> str:
        if self.rate is None:
            return "< first rate"
        return f">= {self.rate:g}" if self.capped else f"{self.rate:g}"


def maxima(steps: Iterable[Step]) -> dict[str, dict[int, Maximum]]:
    """variant -> rep -> its maximum, from the search steps."""
    by: dict[tuple[str, int], list[Step]] = {}
    for s in steps:
        if s.phase == "search":
            by.setdefault((s.variant, s.rep), []).append(s)
    out: dict[str, dict[int, Maximum]] = {}
    for (variant, rep), run in sorted(by.items()):
        best: float | None = None
        capped = True
        for s in sorted(run, key=lambda s: s.rate):
            if not s.passed:
                capped = False
                break
            best = s.rate
        out.setdefault(variant, {})[rep] = Maximum(best, capped)
    return out


def ratios(found: dict[str, dict[int, Maximum]], baseline: str = BASELINE
           ) -> dict[str, dict[int, float | None]]:
    """variant -> rep -> its max calls/s over the baseline's in the same repetition (None
    where either has no maximum)."""
    base = found.get(baseline, {})
    out: dict[str, dict[int, float | None]] = {}
    for variant, reps in found.items():
        for rep, m in reps.items():
            b = base.get(rep)
            out.setdefault(variant, {})[rep] = (
                m.rate / b.rate if m.rate is not None and b is not None and b.rate else None)
    return out


def common_steps(steps: Sequence[Step], phase: str = "moderate") -> dict[int, dict[str, Step]]:
    """rep -> variant -> its step of ``phase`` (the steps every variant ran at the same
    rate, for CPU per call and PDD side by side)."""
    out: dict[int, dict[str, Step]] = {}
    for s in steps:
        if s.phase == phase:
            out.setdefault(s.rep, {})[s.variant] = s
    return out


def highest_common_rate(steps: Sequence[Step], rep: int) -> float | None:
    """The highest search rate every variant of ``rep`` passed (None: there is none)."""
    passed: dict[str, set[float]] = {}
    for s in steps:
        if s.phase == "search" and s.rep == rep:
            passed.setdefault(s.variant, set())
            if s.passed:
                passed[s.variant].add(s.rate)
    if not passed:
        return None
    both = set.intersection(*passed.values())
    return max(both) if both else None


# ---------------------------------------------------------------- the report


def _num(value: float | None, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def _cpu_rows(label: str, by_variant: dict[str, Step], variants: Sequence[str]) -> list[str]:
    rows = []
    base = by_variant.get(BASELINE)
    for v in variants:
        s = by_variant.get(v)
        if s is None:
            continue
        pdd = s.pdd_ms
        total = sum(s.cpu_s.get(p, 0.0) for p in PROCESSES if p != "sipp")
        total_ms = total / s.completed * 1000 if s.completed else None
        base_total = (sum(base.cpu_s.get(p, 0.0) for p in PROCESSES if p != "sipp")
                      / base.completed * 1000) if base is not None and base.completed else None
        cells = [_num(s.per_call_ms(p)) for p in PROCESSES]
        rows.append(
            f"| {label} | {v} | {s.rate:g} | {s.completed}/{s.calls} | "
            f"{_num(percentile(pdd, 50), '.1f')} / {_num(percentile(pdd, 99), '.1f')} | "
            + " | ".join(cells)
            + f" | {_num(total_ms)} | "
            + (f"{total_ms / base_total:.2f}x" if total_ms and base_total else "-") + " |")
    return rows


def render(results: dict[str, Any]) -> str:
    """The Markdown section for bench/RESULTS.md from the raw results of one run."""
    info = results.get("info", {})
    steps = [Step.from_json(s) for s in results.get("steps", [])]
    cfg = results.get("config", {})
    variants = list(cfg.get("variants", [BASELINE, "cluster"]))
    found = maxima(steps)
    rel = ratios(found)
    reps = sorted({s.rep for s in steps if s.phase == "search"})
    lines = [
        "### Two-PBX max calls/s (bench/two_pbx.py)",
        "",
        f"Command: `{info.get('argv', 'sudo .venv/bin/python -m bench.two_pbx')}`; code: git "
        f"{info.get('git', '?')}; {info.get('started', '?')} -> {info.get('finished', '?')} "
        f"({info.get('minutes', '?')} min); load average {info.get('load_start', '?')} at the "
        f"start, {info.get('load_end', '?')} at the end; machine busy "
        f"{_num(info.get('busy'), '.0%')}, steal {_num(info.get('steal'), '.0%')} over the "
        f"run ({info.get('cpus', '?')} CPUs).",
        "",
        "Both PBXes take calls at once, half the rate each (one SIPp agent and one SIPp "
        "carrier per PBX); a step passes with < 1% failed calls, >= 90% of the rate offered "
        "and post-dial delay p99 <= 500 ms. Variants interleaved per rate, their order "
        "rotated each repetition; a variant leaves the search at its first failed step.",
        "",
    ]
    for v in variants:
        lines.append(f"- `{v}`: {VARIANT_LABELS.get(v, v)}")
    if info.get("cut_by_budget"):
        lines += ["", f"The search was cut by the time budget ({cfg.get('budget_minutes')} "
                      "min): maxima marked >= are lower bounds."]
    lines += ["", "| rep | " + " | ".join(f"{v} max calls/s" for v in variants) + " | "
              + " | ".join(f"{v} / {BASELINE}" for v in variants if v != BASELINE) + " |",
              "|---" * (1 + len(variants) + len(variants) - 1) + "|"]
    for rep in reps:
        cells = [found.get(v, {}).get(rep, Maximum(None, False)).text() for v in variants]
        cells += [_num(rel.get(v, {}).get(rep)) for v in variants if v != BASELINE]
        lines.append(f"| {rep} | " + " | ".join(cells) + " |")
    meds = []
    for v in variants:
        got = [m.rate for m in found.get(v, {}).values() if m.rate is not None]
        meds.append(_num(median(got), "g"))
    for v in variants:
        if v != BASELINE:
            got_r = [r for r in rel.get(v, {}).values() if r is not None]
            meds.append(_num(median(got_r)))
    if reps:
        lines.append("| median | " + " | ".join(meds) + " |")
    header = ("| step | variant | calls/s | completed | PDD p50 / p99 ms | "
              + " | ".join(PROCESSES) + " | all servers | x direct |")
    lines += ["", "CPU milliseconds per completed call, per process (utime+stime from "
              "/proc; `postgres` is the postmaster and every backend; `sipp` both agents "
              "and both carriers, not counted in \"all servers\"):", "", header,
              "|---" * (header.count("|") - 1) + "|"]
    for rep, by_variant in sorted(common_steps(steps).items()):
        lines += _cpu_rows(f"moderate, rep {rep}", by_variant, variants)
    for rep in reps:
        rate = highest_common_rate(steps, rep)
        if rate is None:
            continue
        at = {s.variant: s for s in steps
              if s.phase == "search" and s.rep == rep and s.rate == rate}
        lines += _cpu_rows(f"highest common, rep {rep}", at, variants)
    handling = [h for s in steps if s.phase != "warmup" for h in s.handling_ms]
    if handling:
        lines += ["", f"outguard's own StasisStart -> continue (the Redis reservation "
                      f"included), every screened step: p50 "
                      f"{_num(percentile(handling, 50))} ms, p99 "
                      f"{_num(percentile(handling, 99))} ms ({len(handling)} calls)."]
    kinds = sorted({k for s in steps for k in s.stages_ms})
    if kinds:
        low = min((s.rate for s in steps if s.stages_ms), default=0)
        lines += ["", f"Diagnosis (--diagnose), screened steps at {low:g} calls/s: outguard's "
                      "stages and REST requests, ms (StasisStart -> continue answered is the "
                      "whole handling):", "",
                  "| variant | stage | n | p50 | p90 | p99 |", "|---|---|---|---|---|---|"]
        for variant in variants:
            at = [s for s in steps if s.rate == low and s.phase != "warmup"
                  and s.variant == variant and s.stages_ms]
            rows = [("StasisStart -> continue answered", [x for s in at for x in s.handling_ms])]
            rows += [(k, [x for s in at for x in s.stages_ms.get(k, [])]) for k in kinds]
            for kind, xs in rows:
                if xs:
                    lines.append(f"| {variant} | {kind} | {len(xs)} | "
                                 f"{_num(percentile(xs, 50))} | {_num(percentile(xs, 90))} | "
                                 f"{_num(percentile(xs, 99))} |")
    lines += ["", "Every step:", "", "| phase | rep | variant | calls/s | calls | failed | "
              "offered | PDD p50 / p99 ms | busy | steal | Redis scripts/call | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in steps:
        if s.phase == "warmup":
            continue
        pdd = s.pdd_ms
        lines.append(
            f"| {s.phase} | {s.rep} | {s.variant} | {s.rate:g} | {s.calls} | {s.failed} | "
            f"{_num(s.offered_cps, '.1f')} | {_num(percentile(pdd, 50), '.1f')} / "
            f"{_num(percentile(pdd, 99), '.1f')} | {s.busy:.0%} | {s.steal:.0%} | "
            f"{_num(s.scripts / s.completed if s.completed else None)} | "
            f"{'pass' if s.passed else 'FAIL: ' + s.why} |")
    return "\n".join(lines) + "\n"
