"""Call reports from the call log: attempts, allowed, blocked by reason, answered, connect
rate (接通率 = answered / allowed), average talk time, short-call ratio and complaints,
grouped by day or hour (in the policy's time zone), tenant and/or account.

Pure over iterables: the CLI feeds it ``store.iter_calls`` directly, the API does the same
in the store's executor. Complaints are attributed to the account that last called from the
complained-about caller ID before the complaint (the call log and the complaints are merged
in time order), and to the complaint's tenant or, failing that, that call's tenant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from outguard.errors import InvalidInput
from outguard.store.base import Complaint, LoggedCall

GROUPS = ("day", "hour", "tenant", "account")
#: an answered call shorter than this (seconds) counts as a short call
SHORT_CALL_S = 6.0


@dataclass
class Row:
    key: tuple[str, ...]
    attempts: int = 0
    allowed: int = 0
    blocked: int = 0
    shadow: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    answered: int = 0
    talk_s: float = 0.0
    short_calls: int = 0
    complaints: int = 0

    def add_call(self, c: LoggedCall, short_s: float) -> None:
        self.attempts += 1
        if c.call.verdict == "allow":
            self.allowed += 1
            if c.call.shadow:
                self.shadow += 1
            if c.answered_at is not None:
                self.answered += 1
                duration = c.duration or 0.0
                self.talk_s += duration
                if duration < short_s:
                    self.short_calls += 1
        else:
            self.blocked += 1
            reason = c.call.reason or "unknown"
            self.by_reason[reason] = self.by_reason.get(reason, 0) + 1

    def as_dict(self, by: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = dict(zip(by, self.key))
        out.update(
            attempts=self.attempts, allowed=self.allowed, blocked=self.blocked,
            shadow_flagged=self.shadow, blocked_by_reason=dict(sorted(self.by_reason.items())),
            answered=self.answered,
            connect_rate=round(self.answered / self.allowed, 4) if self.allowed else None,
            avg_duration=round(self.talk_s / self.answered, 1) if self.answered else None,
            short_calls=self.short_calls,
            short_call_ratio=round(self.short_calls / self.answered, 4) if self.answered else None,
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

    def __call__(self, at: float, tenant: str, account: str) -> tuple[str, ...]:
        local = datetime.fromtimestamp(at, UTC).astimezone(self.tz)
        values = {"day": local.strftime("%Y-%m-%d"), "hour": local.strftime("%Y-%m-%d %H:00"),
                  "tenant": tenant, "account": account}
        return tuple(values[g] for g in self.by)


def build_report(
    calls: Iterable[LoggedCall], complaints: Sequence[Complaint], *, by: Sequence[str],
    tz: str = "Asia/Shanghai", short_s: float = SHORT_CALL_S,
) -> dict[str, Any]:
    """``{"by": [...], "timezone": tz, "rows": [...], "total": {...}}``; rows sorted by key."""
    keyer = _Keyer(by, ZoneInfo(tz))
    rows: dict[tuple[str, ...], Row] = {}
    total = Row(())
    pending = sorted(complaints, key=lambda c: c.at)
    last_caller: dict[str, tuple[str, str]] = {}  # caller ID -> (tenant, account)
    i = 0

    def settle(until: float) -> None:
        nonlocal i
        while i < len(pending) and pending[i].at.timestamp() <= until:
            c = pending[i]
            i += 1
            tenant, account = last_caller.get(c.caller_id, ("", ""))
            key = keyer(c.at.timestamp(), c.tenant_id or tenant, account)
            rows.setdefault(key, Row(key)).complaints += 1
            total.complaints += 1

    for c in calls:
        settle(c.call.at)
        key = keyer(c.call.at, c.call.tenant, c.call.account)
        rows.setdefault(key, Row(key)).add_call(c, short_s)
        total.add_call(c, short_s)
        last_caller[c.call.caller_id] = (c.call.tenant, c.call.account)
    settle(float("inf"))
    return {
        "by": list(by), "timezone": tz, "short_call_s": short_s,
        "rows": [rows[k].as_dict(by) for k in sorted(rows)],
        "total": total.as_dict(()),
    }
