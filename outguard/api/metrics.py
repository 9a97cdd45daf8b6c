"""Prometheus metrics: a collector fed by the event hub (one subscriber task started with
the API) and the text exposition format. A scrape costs a dict walk."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from outguard.events import EventHub

#: decision latency buckets, seconds (decisions take tens of microseconds)
BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1)


class Collector:
    """Counters and a histogram fed by the event hub."""

    def __init__(self) -> None:
        self.decisions: dict[tuple[str, str], int] = {}
        self.buckets = [0] * len(BUCKETS)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.outcomes: dict[str, int] = {}
        self.other: dict[str, int] = {}
        self.missed = 0

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        if kind == "decision":
            key = (str(event.get("verdict")), str(event.get("reason")))
            self.decisions[key] = self.decisions.get(key, 0) + 1
            seconds = float(event.get("decision_us", 0)) / 1e6
            self.latency_sum += seconds
            self.latency_count += 1
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self.buckets[i] += 1
        elif kind == "outcome":
            result = "answered" if event.get("answered") else "unanswered"
            self.outcomes[result] = self.outcomes.get(result, 0) + 1
        elif kind:
            self.other[kind] = self.other.get(kind, 0) + 1

    async def run(self, hub: EventHub) -> None:
        with hub.subscribe(10_000) as sub:
            while True:
                self.add(await sub.get())
                self.missed = sub.missed


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(name: str, kind: str, help_text: str,
            samples: Iterable[tuple[str, dict[str, str], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{suffix}{_labels(**labels)} {value:g}" for suffix, labels, value in samples]
    return lines


def render(collector: Collector, connected: dict[str, bool], live_calls: int,
           suspensions: dict[str, int], snapshot: dict[str, float]) -> str:
    """The exposition text (format 0.0.4)."""
    c = collector
    out: list[str] = []
    out += _family("outguard_decisions_total", "counter",
                   "Screening decisions by verdict and reason.",
                   [("", {"verdict": v, "reason": r}, n)
                    for (v, r), n in sorted(c.decisions.items())])
    hist: list[tuple[str, dict[str, str], float]] = [
        ("_bucket", {"le": f"{bound:g}"}, n) for bound, n in zip(BUCKETS, c.buckets)]
    hist += [("_bucket", {"le": "+Inf"}, c.latency_count), ("_sum", {}, c.latency_sum),
             ("_count", {}, c.latency_count)]
    out += _family("outguard_decision_latency_seconds", "histogram",
                   "Time to decide one call (CPU, in process).", hist)
    out += _family("outguard_call_outcomes_total", "counter",
                   "Allowed calls that ended, answered or not.",
                   [("", {"result": k}, n) for k, n in sorted(c.outcomes.items())])
    out += _family("outguard_events_total", "counter", "Other live events by type.",
                   [("", {"type": k}, n) for k, n in sorted(c.other.items())])
    out += _family("outguard_connected", "gauge",
                   "1 when a part (ari, agi, ami) is connected to Asterisk.",
                   [("", {"part": k}, float(v)) for k, v in sorted(connected.items())])
    out += _family("outguard_calls_in_progress", "gauge", "Allowed calls not ended yet.",
                   [("", {}, live_calls)])
    out += _family("outguard_suspensions_active", "gauge", "Active suspensions by party kind.",
                   [("", {"party_kind": k}, n) for k, n in sorted(suspensions.items())])
    out += _family("outguard_snapshot", "gauge", "The screening snapshot in use.",
                   [("", {"figure": k}, v) for k, v in sorted(snapshot.items())])
    out += _family("outguard_events_missed_total", "counter",
                   "Events the metrics collector lost by falling behind.", [("", {}, c.missed)])
    return "\n".join(out) + "\n"
