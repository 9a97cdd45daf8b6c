"""Prometheus metrics, exposed with prometheus-client.

Each API app has its own registry (``registry()``): the process and platform collectors and
``outguard_build_info`` that come with prometheus-client, the process-wide round trips,
failures and store errors of ``outguard.probes``, and this app's figures. The figures come
from a ``Collector`` fed by the event hub (one subscriber task started with the API) plus
what the scrape reads from the app (``Scrape``): connection state, reconnects, calls in
progress, active suspensions and the snapshot. A scrape costs a dict walk and one query.

One unit per metric: counts are ``*_total`` counters or plain gauges, times are seconds.
Labels stay few: decisions and outcomes carry the PBX (one per [[ari]]/[[ami]] target,
a handful), connection state the part and the PBX; never a number, account or channel.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector as PromCollector

from outguard import probes, version
from outguard.callevents import CallDecided, CallEnded
from outguard.cluster.model import CapHealth
from outguard.enforcement.deadlines import DUE_SOON_S
from outguard.events import Event, EventHub

#: decision latency buckets, seconds (decisions take tens of microseconds)
BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1)

#: the exposition's media type (text format 0.0.4)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: what each snapshot figure counts (``outguard_snapshot_<figure>``); a figure not named here
#: is still exported, with a generic help text
SNAPSHOT_FIGURES = {
    "rows": "List rows read when the screening snapshot was built.",
    "numbers": "List entries in the screening snapshot.",
    "expired_skipped": "List rows skipped when the snapshot was built because they had expired.",
    "bad_rows": "List rows skipped when the snapshot was built because they were malformed.",
    "parties": "Tenants, accounts and caller IDs in the screening snapshot.",
    "rules": "Rules in force in the screening snapshot.",
    "lists": "Lists in the screening snapshot.",
}


class Collector:
    """Counters and a histogram fed by the event hub."""

    def __init__(self) -> None:
        self.decisions: dict[tuple[str, str, str], int] = {}  # (verdict, reason, pbx)
        self.redone: dict[str, int] = {}  # decisions that replaced an undone one, by pbx
        self.buckets = [0] * len(BUCKETS)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.outcomes: dict[tuple[str, str], int] = {}  # (result, pbx)
        self.other: dict[str, int] = {}
        self.missed = 0

    def add(self, event: Event) -> None:
        if isinstance(event, CallDecided):
            key = (event.verdict, event.reason, event.pbx)
            self.decisions[key] = self.decisions.get(key, 0) + 1
            if event.redo:
                self.redone[event.pbx] = self.redone.get(event.pbx, 0) + 1
            if event.failed:  # no decision was taken: no decision latency to count
                return
            seconds = event.decision_us / 1e6
            self.latency_sum += seconds
            self.latency_count += 1
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self.buckets[i] += 1
        elif isinstance(event, CallEnded):
            result = ("answered" if event.answered else "unanswered", event.pbx)
            self.outcomes[result] = self.outcomes.get(result, 0) + 1
        else:
            self.other[event.type] = self.other.get(event.type, 0) + 1

    async def run(self, hub: EventHub) -> None:
        with hub.subscribe(10_000) as sub:
            while True:
                self.add(await sub.get())
                self.missed = sub.missed


@dataclass(frozen=True)
class Scrape:
    """What one scrape reads from the running app, beside the collector's counts."""

    #: by (part, pbx): ("ari", "pbx1"); the FastAGI server's pbx is ""
    connected: Mapping[tuple[str, str], bool] = field(default_factory=dict)
    reconnects: Mapping[tuple[str, str], int] = field(default_factory=dict)
    live_calls: int = 0
    #: calls in progress by PBX
    live_by_pbx: Mapping[str, int] = field(default_factory=dict)
    suspensions: Mapping[str, int] = field(default_factory=dict)
    snapshot: Mapping[str, float] = field(default_factory=dict)
    snapshot_age_s: float | None = None
    #: call-log writes (``SQLiteStore.write_health``): spool depth, drops, degraded
    store: Mapping[str, Any] = field(default_factory=dict)
    #: cluster mode: the shared cap store's health (``cluster.model.CapHealth``)
    caps: CapHealth | None = None
    #: cluster mode: the call feed's figures (``CallFeed.figures``)
    feed: Mapping[str, int] | None = None
    #: cluster mode: claims of PBX names refused so far, and refused now, by pbx
    #: (``outguard.pbx_claims``); None outside cluster mode
    pbx_refused: Mapping[str, int] | None = None
    pbx_conflicts: Mapping[str, int] = field(default_factory=dict)
    #: by pbx, for each ARI target: how often another connection took its Stasis
    #: application (ApplicationReplaced), and whether it stands aside now (0/1)
    ari_replaced: Mapping[str, int] = field(default_factory=dict)
    ari_standing_aside: Mapping[str, int] = field(default_factory=dict)
    #: open complaints from regulators' channels by (channel, deadline state)
    complaints: Mapping[tuple[str, str], int] = field(default_factory=dict)
    #: of those, by channel, the deadlines counted Monday-Friday (calendar_unknown)
    calendar_unknown: Mapping[str, int] = field(default_factory=dict)
    #: caller-ID health (``Enforcer.health_summary``): open/working tasks, throttled,
    #: warnings; empty when no enforcer runs
    health: Mapping[str, int] = field(default_factory=dict)


def families(c: Collector, s: Scrape) -> Iterator[Metric]:
    """This app's metric families."""
    decisions = CounterMetricFamily(
        "outguard_decisions",
        "Screening decisions by verdict (allow, block, failed), reason and PBX.",
        labels=["verdict", "reason", "pbx"])
    for (verdict, reason, pbx), n in sorted(c.decisions.items()):
        decisions.add_metric([verdict, reason, pbx], n)
    yield decisions
    yield _counter("outguard_decisions_redone",
                   "Decisions that replaced an earlier decision of the same call that was "
                   "never carried out (outguard stopped between deciding and answering), by "
                   "PBX; each is in outguard_decisions_total too.", "pbx", c.redone)
    cumulative = [(f"{bound:g}", float(n)) for bound, n in zip(BUCKETS, c.buckets)]
    yield HistogramMetricFamily(
        "outguard_decision_latency_seconds", "Time to decide one call (CPU, in process).",
        buckets=cumulative + [("+Inf", float(c.latency_count))], sum_value=c.latency_sum)
    outcomes = CounterMetricFamily(
        "outguard_call_outcomes", "Allowed calls that ended, answered or not, by PBX.",
        labels=["result", "pbx"])
    for (result, pbx), n in sorted(c.outcomes.items()):
        outcomes.add_metric([result, pbx], n)
    yield outcomes
    yield _counter("outguard_events", "Other live events by type.", "type", c.other)
    yield _counter("outguard_events_missed",
                   "Events the metrics collector lost by falling behind.", None, {"": c.missed})
    connected = GaugeMetricFamily(
        "outguard_connected", "1 when a part (ari, agi, ami) is connected to a PBX's Asterisk "
        "(agi: listening; its pbx label is empty).", labels=["part", "pbx"])
    for (part, pbx), up in sorted(s.connected.items()):
        connected.add_metric([part, pbx], float(up))
    yield connected
    reconnects = CounterMetricFamily(
        "outguard_reconnects", "Reconnection attempts of a part (ari, ami) after losing a "
        "PBX's Asterisk or failing to reach it.", labels=["part", "pbx"])
    for (part, pbx), n in sorted(s.reconnects.items()):
        reconnects.add_metric([part, pbx], n)
    yield reconnects
    yield _gauge("outguard_calls_in_progress", "Allowed calls not ended yet.", None,
                 {"": s.live_calls})
    yield _gauge("outguard_calls_in_progress_by_pbx", "Allowed calls not ended yet, by PBX.",
                 "pbx", s.live_by_pbx)
    yield _gauge("outguard_suspensions_active", "Active suspensions by party kind.",
                 "party_kind", s.suspensions)
    for figure, value in sorted(s.snapshot.items()):
        yield _gauge(f"outguard_snapshot_{figure}",
                     SNAPSHOT_FIGURES.get(figure, f"Screening snapshot figure {figure!r}."),
                     None, {"": value})
    yield _gauge("outguard_store_spool_rows",
                 "Call-log rows waiting in the spool for the store to take writes again.",
                 None, {"": float(s.store.get("spool_rows", 0))})
    yield _counter("outguard_store_rows_spooled",
                   "Call-log rows the store refused and the spool kept.", None,
                   {"": float(s.store.get("rows_spooled", 0))})
    yield _counter("outguard_store_rows_dropped",
                   "Call-log rows lost: neither stored nor spooled.", None,
                   {"": float(s.store.get("rows_dropped", 0))})
    yield _gauge("outguard_store_degraded", "1 while the store refuses call-log writes.",
                 None, {"": 1.0 if s.store.get("degraded") else 0.0})
    if s.caps is not None:
        yield from _cap_store(s.caps)
    if s.feed is not None:
        yield from _call_feed(s.feed)
    if s.pbx_refused is not None:
        yield _counter("outguard_pbx_conflicts",
                       "Connections to an Asterisk refused because another Asterisk holds"
                       " their PBX name, or another instance their Stasis application there"
                       " (outguard.pbx_claims), by PBX.", "pbx",
                       {k: float(v) for k, v in s.pbx_refused.items()})
        yield _gauge("outguard_pbx_conflict",
                     "Targets of a PBX not used now because of such a conflict.", "pbx",
                     {k: float(v) for k, v in s.pbx_conflicts.items()})
    if s.ari_replaced:
        yield _counter("outguard_ari_app_replaced",
                       "Times another connection registered an ARI target's Stasis"
                       " application on its Asterisk (ApplicationReplaced), by PBX.", "pbx",
                       {k: float(v) for k, v in s.ari_replaced.items()})
        yield _gauge("outguard_ari_app_standing_aside",
                     "1 while an ARI target stands aside because another connection holds"
                     " its Stasis application, by PBX.", "pbx",
                     {k: float(v) for k, v in s.ari_standing_aside.items()})
    due = GaugeMetricFamily(
        "outguard_complaints_open",
        "Open complaints from regulators' channels (12321, 12300, fcc, ofcom) by channel and "
        f"deadline state: open, due_soon (within {DUE_SOON_S / 86400:g} days of the response "
        "deadline), overdue.",
        labels=["channel", "state"])
    for channel in sorted({c for c, _ in s.complaints} | {"12321"}):
        for state in ("open", "due_soon", "overdue"):
            due.add_metric([channel, state], float(s.complaints.get((channel, state), 0)))
    yield due
    yield _gauge("outguard_complaints_calendar_unknown",
                 "Open complaints whose deadline runs into a year its holiday calendar does "
                 "not know (counted Monday-Friday: check by hand or add the year), by channel.",
                 "channel", {ch: float(s.calendar_unknown.get(ch, 0))
                             for ch in sorted({*s.calendar_unknown, "12321"})})
    if s.health:
        yield _gauge("outguard_caller_id_health_tasks",
                     "Caller-ID remediation tasks (号码认证 / 标记申诉) not closed, by state.",
                     "state", {k: float(s.health.get(k, 0)) for k in ("open", "working")})
        yield _gauge("outguard_caller_id_throttled",
                     "Caller IDs whose caps are reduced while their remediation task is open.",
                     None, {"": float(s.health.get("throttled", 0))})
        yield _gauge("outguard_caller_id_health_warnings",
                     "Caller IDs whose connect rate is down sharply against their own "
                     "baseline now.", None, {"": float(s.health.get("warnings", 0))})
    if s.snapshot_age_s is not None:
        yield _gauge("outguard_snapshot_age_seconds",
                     "Seconds since the screening snapshot in use was built.", None,
                     {"": s.snapshot_age_s})


def _cap_store(h: CapHealth) -> Iterator[Metric]:
    """Cluster mode: how the shared caps (Redis) fare."""
    yield _gauge("outguard_cap_store_up",
                 "1 while the shared cap store (Redis) answers; 0: the caps' failure policy"
                 " (when_unavailable) decides.", None, {"": 1.0 if h.available else 0.0})
    yield _counter("outguard_cap_store_failures",
                   "Round trips to the shared cap store that failed or timed out.", None,
                   {"": float(h.failures)})
    yield _counter("outguard_cap_store_fallbacks",
                   "Calls decided by the caps' failure policy while the cap store could not"
                   " answer (blocked: a cap failing closed; allowed: let through uncounted).",
                   "verdict", {"blocked": float(h.failed_closed),
                               "allowed": float(h.failed_open)})
    yield _counter("outguard_cap_store_unscreened",
                   "Calls screening could not decide that went out all the same (fail-open),"
                   " counted in the shared caps (at once, or when the cap store returned).",
                   None, {"": float(h.unscreened)})
    yield _gauge("outguard_cap_store_pending",
                 "Calls let through uncounted, waiting to be counted when the cap store"
                 " returns.", None, {"": float(len(h.pending))})
    yield _counter("outguard_cap_store_replayed",
                   "Calls let through uncounted that were counted once the cap store"
                   " returned.", None, {"": float(h.replayed)})
    yield _counter("outguard_cap_store_reheld",
                   "Calls still up whose concurrency slots were taken (or extended) when the"
                   " cap store answered again after an outage.", None, {"": float(h.reheld)})
    yield _counter("outguard_cap_store_dropped",
                   "Calls let through uncounted that were never counted: more than the"
                   " remembered maximum waited for the cap store.", None,
                   {"": float(h.dropped)})
    yield _counter("outguard_cap_store_rebuilds",
                   "Times the shared counters were rebuilt from the call log (Redis came back"
                   " empty).", None, {"": float(h.rebuilds)})


def _call_feed(f: Mapping[str, int]) -> Iterator[Metric]:
    """Cluster mode: this instance's call events on the call feed (Redis)."""
    yield _counter("outguard_call_feed_published",
                   "Call events this instance appended to the cluster's call feed.", None,
                   {"": float(f.get("published", 0))})
    yield _gauge("outguard_call_feed_backlog",
                 "Call events waiting for Redis to take them (kept, bounded).", None,
                 {"": float(f.get("backlog", 0))})
    yield _counter("outguard_call_feed_late",
                   "Call events appended after waiting for Redis to answer again.", None,
                   {"": float(f.get("late", 0))})
    yield _counter("outguard_call_feed_dropped",
                   "Call events never shared: pushed out of the full backlog while Redis"
                   " could not take them (the call log keeps them).", None,
                   {"": float(f.get("dropped", 0))})
    yield _counter("outguard_call_feed_recovered",
                   "Call events a previous run of this instance could not share before it"
                   " stopped or died, derived again from the call log and appended at start.",
                   None, {"": float(f.get("recovered", 0))})
    yield _counter("outguard_call_feed_missed",
                   "Call-feed entries this instance could not read.", None,
                   {"": float(f.get("missed", 0))})


def _counter(name: str, help_text: str, label: str | None,
             values: Mapping[str, float]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, help_text, labels=[label] if label else None)
    for key, value in sorted(values.items()):
        family.add_metric([key] if label else [], value)
    return family


def _gauge(name: str, help_text: str, label: str | None,
           values: Mapping[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=[label] if label else None)
    for key, value in sorted(values.items()):
        family.add_metric([key] if label else [], value)
    return family


def registry() -> CollectorRegistry:
    """A registry for one app: process, platform, build info and the probes."""
    reg = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)
    Info("outguard_build", "The outguard version running.", registry=reg).info(
        {"version": version(), "python": platform.python_version()})
    for probe in (probes.ROUNDTRIP, probes.SCREENING_FAILURES, probes.STORE_WRITE_ERRORS):
        reg.register(probe)
    return reg


class _Exposition:
    """The registry's families followed by this scrape's."""

    def __init__(self, reg: CollectorRegistry, extra: Iterable[Metric]) -> None:
        self.reg, self.extra = reg, extra

    def collect(self) -> Iterable[Metric]:
        yield from self.reg.collect()
        yield from self.extra


def render(reg: CollectorRegistry, collector: Collector, scrape: Scrape) -> bytes:
    """The exposition text (format 0.0.4)."""
    exposition: PromCollector = _Exposition(reg, families(collector, scrape))
    return generate_latest(exposition)
