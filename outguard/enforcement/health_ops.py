"""Caller-ID health on the enforcer: the daily figures, the connect-rate early warning
(``health.judge``) run with the triggers, and the remediation tasks it opens.

A warning opens a task in the store (audited; one per caller ID that is not closed, across
every instance) and, while the task is not closed, every ``caller_id`` cap of the policy
applies to that caller ID multiplied by the policy's ``cap_factor`` (the store's data
version moves, the call path's snapshot follows). The task is worked (notes: 号码认证
applied for, 标记申诉 filed) and closed by a person. Nothing here ever picks, proposes or
switches to another caller ID.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from outguard.enforcement.base import EnforcerBase
from outguard.enforcement.health import HEALTH_ACTOR, REMEDIATION_STEPS, Drop, judge
from outguard.enforcement.records import RiskFigures
from outguard.errors import Conflict, InvalidInput
from outguard.privacy import mask
from outguard.store.health import HealthTask
from rules.model import PartyKind

logger = logging.getLogger(__name__)

CALLER = PartyKind.CALLER_ID
MAX_DAYS = 90
#: caller IDs judged between two yields to the event loop (as the triggers' CHUNK)
CHUNK = 200


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def task_dict(t: HealthTask) -> dict[str, Any]:
    return {
        "id": t.id, "caller_id": t.caller_id, "tenant_id": t.tenant_id, "state": t.state,
        "reason": t.reason, "figures": t.figures, "cap_factor": t.cap_factor,
        "throttles": t.throttles, "opened_at": _iso(t.opened_at), "opened_by": t.opened_by,
        "notes": list(t.notes), "closed_at": _iso(t.closed_at), "closed_by": t.closed_by,
        "resolution": t.resolution, "steps": list(REMEDIATION_STEPS),
    }


@dataclass(frozen=True, slots=True)
class Health:
    """One caller ID's health: figures per day (policy time zone, newest last), the
    judgement now (recent window against its baseline) and its remediation tasks."""

    caller_id: str
    timezone: str
    days: tuple[tuple[str, RiskFigures], ...]
    recent: RiskFigures
    baseline: RiskFigures
    warning: Drop | None  # what the detector sees now (None: no sharp drop)
    tasks: tuple[HealthTask, ...]
    cap_factor: float  # applied to its caps now (1.0: not throttled)

    @property
    def open_task(self) -> HealthTask | None:
        return next((t for t in reversed(self.tasks) if t.throttles), None)

    def to_dict(self) -> dict[str, Any]:
        open_task = self.open_task
        return {
            "caller_id": self.caller_id, "timezone": self.timezone,
            "days": [{"day": day, **_day(f)} for day, f in self.days],
            "recent": _day(self.recent), "baseline": _day(self.baseline),
            "drop": None if self.warning is None else round(self.warning.relative_drop, 4),
            "warning": self.warning is not None,
            "throttled": open_task is not None, "cap_factor": self.cap_factor,
            "open_task": None if open_task is None else task_dict(open_task),
            "tasks": [task_dict(t) for t in self.tasks],
        }


def _day(f: RiskFigures) -> dict[str, Any]:
    """The figures the health view shows (each with its one definition, figures.py)."""
    return {"attempts": f.attempts, "ended": f.ended, "answered": f.answered,
            "connect_rate": f.connect_rate, "short_calls": f.short_calls,
            "short_call_ratio": f.short_call_ratio, "complaints": f.complaints,
            "marks": f.marks}


class HealthOps(EnforcerBase):
    """The health part of the ``Enforcer`` (mixed in; callers hold no lock)."""

    if TYPE_CHECKING:
        async def require_party(self, kind: PartyKind | str,
                                key: str) -> tuple[PartyKind, str]: ...  # api.Enforcer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._health_tasks: dict[str, HealthTask] = {}  # caller ID -> its task not closed
        self._health_closed: dict[str, float] = {}  # caller ID -> its last task's close
        self._health_stale = True

    def _store_changed(self, version: int) -> None:
        self._health_stale = True
        super()._store_changed(version)

    async def _load_health(self) -> None:
        if not self._health_stale:
            return
        self._health_stale = False
        tasks: list[HealthTask] = await self.store.list_health_tasks()
        self._health_tasks = {t.caller_id: t for t in tasks if t.throttles}
        self._health_closed = {}
        for t in tasks:
            if t.closed_at is not None:
                self._health_closed[t.caller_id] = max(
                    self._health_closed.get(t.caller_id, 0.0), t.closed_at.timestamp())

    # -- the detector -----------------------------------------------------------------

    def _judge(self, caller_id: str, now: float) -> tuple[RiskFigures, RiskFigures, Drop | None]:
        """(recent, baseline, drop) of one caller ID now. After a closed task only what
        happened since the close counts as recent (the same drop does not reopen it)."""
        spec = self.config.health
        since = self._health_closed.get(caller_id)
        recent = self.book.figures(CALLER, caller_id, spec.window_s, now, since,
                                   reasons=False)
        start = now - spec.window_s
        baseline = self.book.between(CALLER, caller_id, start - spec.baseline_s, start)
        return recent, baseline, judge(spec, recent, baseline)

    async def _check_health(self, keys: Iterable[str]) -> list[HealthTask]:
        """Open a task for every caller ID among ``keys`` whose rate dropped sharply and
        that has no task open. Callers hold ``self._lock``."""
        spec = self.config.health
        if not spec.enabled:
            return []
        await self._load_health()
        now = self.clock()
        opened = []
        for n, key in enumerate(list(keys)):  # the figures may gain parties meanwhile
            if n and n % CHUNK == 0:
                await asyncio.sleep(0)  # ~100 us per caller ID: never hold the call path
            if key in self._health_tasks:
                continue
            _, _, drop = self._judge(key, now)
            if drop is None:
                continue
            try:
                task: HealthTask = await self.store.open_health_task(
                    key, reason=drop.message(spec), figures=drop.to_dict(),
                    cap_factor=spec.cap_factor, actor=HEALTH_ACTOR,
                    tenant_id=self.book.tenant_of(CALLER, key),
                    at=datetime.fromtimestamp(now, UTC))
            except Conflict:  # another instance opened it first
                self._health_stale = True
                continue
            self._health_tasks[key] = task
            opened.append(task)
            logger.warning("caller-ID health: %s %s; task %d opened, caps x %g until it is "
                           "closed", mask(key), drop.message(spec), task.id, spec.cap_factor)
            self._announce("caller_id.health_warning", task_dict(task))
        return opened

    async def check_health(self, caller_id: str | None = None) -> list[HealthTask]:
        """Run the detector now, for one caller ID or every one seen recently."""
        async with self._lock:
            if caller_id is not None:
                keys: list[str] = [self._party(CALLER, caller_id)[1]]
            else:
                keys = list(self.book.parties(CALLER, self.clock() - self.config.health.span_s))
            return await self._check_health(keys)

    # -- reading ----------------------------------------------------------------------

    async def health(self, caller_id: str, *, days: int = 7) -> Health:
        """The caller ID's health: ``days`` days of figures in the policy's time zone
        (today so far last), the detector's view now and its tasks. NotFound when
        outguard has never heard of the caller ID."""
        self._check_days(days)
        _, key = await self.require_party(CALLER, caller_id)
        await self._load_health()
        now = self.clock()
        rows = self._days(key, days, now)
        recent, baseline, drop = self._judge(key, now)
        tasks: list[HealthTask] = await self.store.list_health_tasks(caller_id=key)
        open_task = self._health_tasks.get(key)
        return Health(key, self.policy.timezone, tuple(rows), recent, baseline,
                      drop if self.config.health.enabled else None, tuple(tasks),
                      open_task.cap_factor if open_task is not None else 1.0)

    def _check_days(self, days: int) -> None:
        """The figures are kept for the policy's longest window plus a day: older days
        would show as empty, not as quiet."""
        kept = min(MAX_DAYS, int(self.book.retention_s // 86400))
        if not 1 <= days <= kept:
            raise InvalidInput(f"days must be from 1 to {kept} (the figures are kept for the "
                               "policy's longest window plus a day)", field="days")

    def _days(self, key: str, days: int, now: float) -> list[tuple[str, RiskFigures]]:
        """(local date, figures) of the last ``days`` days in the policy's time zone,
        today so far last."""
        zone = ZoneInfo(self.policy.timezone)
        today = datetime.fromtimestamp(now, zone).date()
        rows = []
        for back in range(days - 1, -1, -1):
            day = today - timedelta(days=back)
            lo = datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
            nxt = day + timedelta(days=1)
            hi = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).timestamp()
            rows.append((day.isoformat(), self.book.between(
                CALLER, key, lo, hi if hi <= now else now + 1e-6)))
        return rows

    async def health_table(self, *, days: int = 7) -> list[dict[str, Any]]:
        """Every caller ID seen within the detector's span: rate now, baseline, drop, its
        task and ``days`` days of daily figures, the sharpest drops first."""
        self._check_days(days)
        await self._load_health()
        now = self.clock()
        rows = []
        for key in self.book.parties(CALLER, now - self.config.health.span_s):
            recent, baseline, drop = self._judge(key, now)
            r, b = recent.connect_rate, baseline.connect_rate
            task = self._health_tasks.get(key)
            rows.append({
                "caller_id": key, "tenant": self.book.tenant_of(CALLER, key),
                "attempts": recent.attempts, "ended": recent.ended,
                "connect_rate": r, "baseline_connect_rate": b,
                "baseline_ended": baseline.ended,
                "drop": None if r is None or not b else round(1 - r / b, 4),
                "short_call_ratio": recent.short_call_ratio,
                "complaints": recent.complaints, "marks": recent.marks,
                "warning": drop is not None,
                "task": None if task is None else task.id,
                "task_state": None if task is None else task.state,
                "cap_factor": task.cap_factor if task is not None else 1.0,
                "days": [{"day": day, **_day(f)} for day, f in self._days(key, days, now)],
            })
        return sorted(rows, key=lambda row: (-(row["drop"] or -1.0), row["caller_id"]))

    async def health_summary(self) -> dict[str, int]:
        """For /metrics: tasks not closed by state, caller IDs throttled now, and caller
        IDs whose connect rate the detector sees down sharply now."""
        await self._load_health()
        now = self.clock()
        out = {"open": 0, "working": 0, "throttled": len(self._health_tasks), "warnings": 0}
        for task in self._health_tasks.values():
            out[task.state] = out.get(task.state, 0) + 1
        if self.config.health.enabled:
            out["warnings"] = sum(
                1 for key in list(self.book.parties(CALLER, now - self.config.health.span_s))
                if self._judge(key, now)[2] is not None)
        return out

    async def list_health_tasks(self, state: str | None = None, *,
                                caller_id: str | None = None) -> list[HealthTask]:
        """Remediation tasks, oldest first (``state="active"``: not closed)."""
        key = self._party(CALLER, caller_id)[1] if caller_id else None
        rows: list[HealthTask] = await self.store.list_health_tasks(state=state, caller_id=key)
        return rows

    # -- working a task ---------------------------------------------------------------

    async def note_health_task(self, task_id: int, *, text: str, actor: str) -> HealthTask:
        """Record a remediation step (e.g. "号码认证 submitted to 腾讯号码公众平台")."""
        task: HealthTask = await self.store.note_health_task(task_id, text=text, actor=actor)
        self._announce("health_task.noted", task_dict(task))
        return task

    async def close_health_task(self, task_id: int, *, resolution: str,
                                actor: str) -> HealthTask:
        """Close with what was done: the caller ID's caps are whole again."""
        async with self._lock:
            task: HealthTask = await self.store.close_health_task(
                task_id, resolution=resolution, actor=actor,
                at=datetime.fromtimestamp(self.clock(), UTC))
            self._health_tasks.pop(task.caller_id, None)
            if task.closed_at is not None:
                self._health_closed[task.caller_id] = task.closed_at.timestamp()
        self._announce("health_task.closed", task_dict(task))
        return task
