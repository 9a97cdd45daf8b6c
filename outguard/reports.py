"""Call reports from the call log: attempts, allowed, blocked by reason, failed, ended, answered,
connect rate (接通率), average talk time, short calls and their ratio, and complaints,
grouped by day or hour (in the policy's time zone), PBX, tenant and/or account.

Every figure is the one ``outguard.figures`` defines, as the risk figures and triggers
use it: connect rate = answered / ended; a short call is an answered call shorter than
the policy's ``[enforcement] short_call_s``; a complaint counts against the account and
tenant it was attributed to when it came in (stored with it), else those of the last
allowed call from the complained-about caller ID to the complainant before it.

``call_report`` is the whole report over a store (the CLI calls it on the store file,
the API in the store's executor); ``build_report`` is pure over iterables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from outguard import figures
from outguard.callevents import FAIL_OPEN, FAILED, went_out
from outguard.errors import InvalidInput
from outguard.store.base import Complaint, LoggedCall, Store
from rules.errors import PolicyError
from rules.policy_types import Policy

GROUPS = ("day", "hour", "pbx", "tenant", "account")


@dataclass
class Row:
    key: tuple[str, ...]
    attempts: int = 0
    allowed: int = 0
    blocked: int = 0
    failed: int = 0
    failed_open: int = 0
    shadow: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    listed_blocks: int = 0
    ended: int = 0
    answered: int = 0
    talk_s: float = 0.0
    short_calls: int = 0
    complaints: int = 0

    def add_call(self, c: LoggedCall, short_s: float) -> None:
        self.attempts += 1
        verdict = c.call.verdict
        if verdict == FAILED:
            self.failed += 1
            if c.call.rule == FAIL_OPEN:
                self.failed_open += 1
        elif verdict == "allow":
            self.allowed += 1
            if c.call.shadow:
                self.shadow += 1
        if went_out(verdict, c.call.rule):
            if c.ended_at is not None:
                self.ended += 1
            if c.answered_at is not None:
                self.answered += 1
                duration = c.duration or 0.0
                self.talk_s += duration
                if figures.is_short(duration, short_s):
                    self.short_calls += 1
        elif verdict != FAILED:
            self.blocked += 1
            reason = c.call.reason or "unknown"
            self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
            if figures.is_listed(reason):
                self.listed_blocks += 1

    def as_dict(self, by: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = dict(zip(by, self.key))
        connect = figures.connect_rate(self.answered, self.ended)
        short = figures.short_call_ratio(self.short_calls, self.answered)
        out.update(
            attempts=self.attempts, allowed=self.allowed, blocked=self.blocked,
            failed=self.failed, failed_open=self.failed_open, shadow_flagged=self.shadow, blocked_by_reason=dict(sorted(self.by_reason.items())),
            listed_blocks=self.listed_blocks, ended=self.ended, answered=self.answered,
            connect_rate=None if connect is None else round(connect, 4),
            avg_duration=figures.avg_duration(self.talk_s, self.answered),
            short_calls=self.short_calls,
            short_call_ratio=None if short is None else round(short, 4),
            complaints=self.complaints,
        )
        return out


def parse_by(text: str | Sequence[str]) -> tuple[str, ...]:
    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else text)]
    by = tuple(p for p in parts if p)
    bad = [p for p in by if p not in GROUPS]
    if bad or len(set(by)) != len(by):
        raise InvalidInput(f"group by a comma-separated choice of {', '.join(GROUPS)}",
                           field="by", value=",".join(by))
    if "day" in by and "hour" in by:
        raise InvalidInput("group by day or by hour, not both", field="by")
    return by


class _Keyer:
    def __init__(self, by: Sequence[str], tz: ZoneInfo) -> None:
        self.by, self.tz = tuple(by), tz

    def __call__(self, at: float, pbx: str, tenant: str, account: str) -> tuple[str, ...]:
        local = datetime.fromtimestamp(at, UTC).astimezone(self.tz)
        values = {"day": local.strftime("%Y-%m-%d"), "hour": local.strftime("%Y-%m-%d %H:00"),
                  "pbx": pbx, "tenant": tenant, "account": account}
        return tuple(values[g] for g in self.by)


#: the most empty periods ``fill`` adds (a year of hours)
MAX_PERIODS = 366 * 24


def periods(by: Sequence[str], since: float, until: float, tz: str) -> list[tuple[str]]:
    """Every day or hour key (as ``_Keyer`` writes it) of [since, until) in ``tz``."""
    if tuple(by) not in (("day",), ("hour",)):
        raise InvalidInput("fill needs by=day or by=hour alone", field="fill")
    step = 86400 if by[0] == "day" else 3600
    if (until - since) / step > MAX_PERIODS:
        raise InvalidInput(f"fill covers at most {MAX_PERIODS} periods; narrow the window",
                           field="fill")
    keyer = _Keyer(by, ZoneInfo(tz))
    keys: dict[tuple[str, ...], None] = {}
    at = since
    while at < until:  # hour steps: days of 23 or 25 hours are walked right too
        keys[keyer(at, "", "", "")] = None
        at += 3600 if step == 86400 else step
    return [(k[0],) for k in keys]


def build_report(
    calls: Iterable[LoggedCall], complaints: Sequence[Complaint], *, by: Sequence[str],
    tz: str = "Asia/Shanghai", short_s: float = figures.DEFAULT_SHORT_CALL_S,
    fill: Sequence[tuple[str]] = (), pbx: str | None = None,
) -> dict[str, Any]:
    """``{"by": [...], "timezone": tz, "short_call_s": s, "definitions": {...}, "rows":
    [...], "total": {...}}``; rows sorted by key; ``fill``: keys that have a row even
    when nothing happened in them (zeros). ``calls`` in time order. With ``pbx`` (the
    calls are that PBX's), a complaint counts only when attributed to one of them."""
    keyer = _Keyer(by, ZoneInfo(tz))
    rows: dict[tuple[str, ...], Row] = {key: Row(key) for key in fill}
    total = Row(())
    pending = sorted((c for c in complaints if c.kind == "complaint"), key=lambda c: c.at)
    last_call: dict[tuple[str, str], tuple[str, str, float]] = {}  # (caller, callee) ->
    last_pbx: dict[tuple[str, str], str] = {}  # (caller, callee) -> PBX of that last call
    i = 0

    def settle(until: float) -> None:
        nonlocal i
        while i < len(pending) and pending[i].at.timestamp() <= until:
            c = pending[i]
            i += 1
            pair = (c.caller_id, c.reporter or "")
            if pbx is not None and pair not in last_pbx:
                continue  # not a complaint about a call of this PBX
            tenant, account = figures.attribute_complaint(
                c.tenant_id, c.account_id, last_call.get(pair))
            key = keyer(c.at.timestamp(), last_pbx.get(pair, ""), tenant or "", account or "")
            rows.setdefault(key, Row(key)).complaints += 1
            total.complaints += 1

    for c in calls:
        settle(c.call.at)
        key = keyer(c.call.at, c.call.pbx, c.call.tenant, c.call.account)
        rows.setdefault(key, Row(key)).add_call(c, short_s)
        total.add_call(c, short_s)
        if went_out(c.call.verdict, c.call.rule):
            last_call[(c.call.caller_id, c.call.destination)] = (
                c.call.account, c.call.tenant, c.call.at)
            last_pbx[(c.call.caller_id, c.call.destination)] = c.call.pbx
    settle(float("inf"))
    return {
        "by": list(by), "timezone": tz, "short_call_s": short_s,
        "definitions": figures.DEFINITIONS,
        "rows": [rows[k].as_dict(by) for k in sorted(rows)],
        "total": total.as_dict(()),
    }


def short_call_s_of(policy: Policy) -> float:
    """The policy's ``[enforcement] short_call_s``: the threshold the triggers use (the
    default when the table is broken, as the service then runs with the defaults)."""
    from outguard.enforcement.policy import validate_enforcement

    try:
        return validate_enforcement(policy).short_call_s
    except PolicyError:
        return figures.DEFAULT_SHORT_CALL_S


def call_report(store: Store, policy: Policy, *, by: Sequence[str], since: float,
                until: float, tenant: str | None = None,
                account: str | None = None, fill: bool = False,
                pbx: str | None = None) -> dict[str, Any]:
    """The report over the store's call log and complaints in [since, until), in the
    policy's time zone and with its short-call threshold (blocking: run it off the loop);
    ``fill``: every day or hour of the window has a row (see ``periods``); ``pbx`` keeps
    one PBX's calls (and the complaints attributed to them)."""
    empty = periods(by, since, until, policy.timezone) if fill else []
    calls = (c for c in store.iter_calls(since, until)
             if (not tenant or c.call.tenant == tenant)
             and (not account or c.call.account == account)
             and (pbx is None or c.call.pbx == pbx))
    complaints = [c for c in store.list_complaints(since=datetime.fromtimestamp(since, UTC))
                  if c.at.timestamp() < until and (not tenant or c.tenant_id in (None, tenant))]
    return build_report(calls, complaints, by=by, tz=policy.timezone,
                        short_s=short_call_s_of(policy), fill=empty, pbx=pbx)


#: the report's CSV columns after the group keys (the figures ``Row.as_dict`` gives)
CSV_FIGURES = ("attempts", "allowed", "blocked", "shadow_flagged", "listed_blocks", "ended",
               "answered", "connect_rate", "avg_duration", "short_calls", "short_call_ratio",
               "complaints", "blocked_by_reason")


def report_csv(report: dict[str, Any]) -> str:
    """The report as CSV: a header, one line per row, then the total (its group keys
    say ``total``); blocked_by_reason as ``reason=n`` pairs joined by ``;``."""
    import csv
    import io

    by = list(report["by"])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*by, *CSV_FIGURES])

    def cells(row: dict[str, Any]) -> list[Any]:
        values = ["" if row[f] is None else row[f] for f in CSV_FIGURES[:-1]]
        reasons = ";".join(f"{k}={v}" for k, v in row["blocked_by_reason"].items())
        return [*values, reasons]

    for row in report["rows"]:
        writer.writerow([*(row[g] for g in by), *cells(row)])
    writer.writerow([*(["total"] * len(by)), *cells(report["total"])])
    return out.getvalue()
