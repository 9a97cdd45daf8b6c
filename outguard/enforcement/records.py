"""The records the enforcement facade returns (plain, frozen, JSON-able via ``to_dict``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from outguard.store.base import Appeal, Complaint, Suspension
from rules.model import PartyKind, PartyState


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def suspension_dict(s: Suspension) -> dict[str, Any]:
    return {
        "id": s.id, "party_kind": s.party_kind.value, "party_key": s.party_key,
        "reason": s.reason, "trigger": s.trigger, "started_at": _iso(s.started_at),
        "ends_at": _iso(s.ends_at), "permanent": s.ends_at is None,
        "created_by": s.created_by, "lifted_by": s.lifted_by, "lift_reason": s.lift_reason,
        "lifted_at": _iso(s.lifted_at),
    }


def appeal_dict(a: Appeal) -> dict[str, Any]:
    return {
        "id": a.id, "party_kind": a.party_kind.value, "party_key": a.party_key,
        "suspension_id": a.suspension_id, "text": a.text, "evidence": a.evidence,
        "state": a.state.value, "reviewer": a.reviewer, "decision": a.decision,
        "created_at": _iso(a.created_at), "decided_at": _iso(a.decided_at),
    }


def complaint_dict(c: Complaint) -> dict[str, Any]:
    return {
        "id": c.id, "kind": c.kind, "caller_id": c.caller_id, "reporter": c.reporter,
        "category": c.category, "source": c.source, "at": _iso(c.at), "note": c.note,
        "tenant_id": c.tenant_id, "account_id": c.account_id,
        "received_at": _iso(c.received_at), "due_at": _iso(c.due_at),
        "calendar_unknown": c.calendar_unknown,
    }


@dataclass(frozen=True, slots=True)
class PartyStatus:
    """What a party (or its reviewer) sees when it asks "am I banned, why, until when".

    ``state`` is the enforcement state now: ACTIVE, SUSPENDED (``until`` set), DISABLED
    (a permanent suspension or a person's disable) or UNVERIFIED (caller IDs whose
    real-name verification is missing or expired). ``strikes`` counts the suspensions
    within the policy's lookback that still count (an approved appeal may clear one);
    ``next_duration_s`` is what the next graded suspension would last (None = permanent).
    """

    kind: PartyKind
    key: str
    state: PartyState
    reason: str = ""
    until: datetime | None = None
    remaining_s: float | None = None
    strikes: int = 0
    next_duration_s: float | None = None
    active: tuple[Suspension, ...] = ()
    history: tuple[Suspension, ...] = ()
    appeals: tuple[Appeal, ...] = ()
    tenant: str | None = None
    #: the party's own state is ACTIVE but its tenant is suspended/disabled (calls stop too)
    blocked_by_tenant: str | None = None

    @property
    def can_call(self) -> bool:
        """Whether calls of this party go out as far as party status goes: its own state
        is ACTIVE and its tenant is not suspended or disabled."""
        return self.state is PartyState.ACTIVE and self.blocked_by_tenant is None

    @property
    def why_not(self) -> str:
        """Why the party cannot call ("" when it can)."""
        if self.can_call:
            return ""
        if self.state is not PartyState.ACTIVE:
            until = f" until {self.until.isoformat()}" if self.until is not None else ""
            return f"{self.kind.value} {self.key} is {self.state.value}{until}" + (
                f": {self.reason}" if self.reason else "")
        return self.blocked_by_tenant or ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value, "key": self.key, "state": self.state.value,
            "can_call": self.can_call, "cannot_call_because": self.why_not or None,
            "reason": self.reason, "until": _iso(self.until), "remaining_s": self.remaining_s,
            "strikes": self.strikes, "next_duration_s": self.next_duration_s,
            "active": [suspension_dict(s) for s in self.active],
            "history": [suspension_dict(s) for s in self.history],
            "appeals": [appeal_dict(a) for a in self.appeals],
            "tenant": self.tenant, "blocked_by_tenant": self.blocked_by_tenant,
        }


@dataclass(frozen=True, slots=True)
class RiskFigures:
    """Rolling figures of one party over one window (in memory, from the call events).

    ``connect_rate`` (接通率) = answered / ended allowed calls; ``short_call_ratio`` =
    answered calls shorter than the policy's ``short_call_s`` / answered calls;
    ``listed_blocks`` = attempts blocked by list rules (do-not-call, blacklist,
    complaint, register); ``marks`` = distinct callees who marked the caller ID.
    """

    kind: PartyKind
    key: str
    window_s: float
    attempts: int = 0  # every attempt: allowed, blocked or failed
    allowed: int = 0
    blocked: int = 0
    failed: int = 0  # screening failed: the failure policy answered (figures.py)
    ended: int = 0  # calls that went out (allowed or failed open) whose outcome is known
    answered: int = 0
    connect_rate: float | None = None
    avg_duration_s: float | None = None
    short_calls: int = 0
    short_call_ratio: float | None = None
    listed_blocks: int = 0
    blocks_by_reason: Mapping[str, int] = field(default_factory=dict)
    complaints: int = 0
    marks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value, "key": self.key, "window_s": self.window_s,
            "attempts": self.attempts, "allowed": self.allowed, "blocked": self.blocked,
            "failed": self.failed, "ended": self.ended, "answered": self.answered,
            "connect_rate": self.connect_rate, "avg_duration_s": self.avg_duration_s,
            "short_calls": self.short_calls, "short_call_ratio": self.short_call_ratio,
            "listed_blocks": self.listed_blocks, "blocks_by_reason": dict(self.blocks_by_reason),
            "complaints": self.complaints, "marks": self.marks,
        }


@dataclass(frozen=True, slots=True)
class Firing:
    """A trigger that crossed its threshold for one party, and what was done."""

    trigger: str
    action: str  # warn | suspend | disable
    kind: PartyKind
    key: str
    metric: str
    value: float
    threshold: float
    message: str
    suspension: Suspension | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger, "action": self.action, "kind": self.kind.value,
            "key": self.key, "metric": self.metric, "value": self.value,
            "threshold": self.threshold, "message": self.message,
            "suspension": None if self.suspension is None else suspension_dict(self.suspension),
        }


@dataclass(frozen=True, slots=True)
class ComplaintImport:
    """The result of ``Enforcer.import_complaints``: rows stored and rows refused."""

    path: str
    lines: int
    added: int
    rejected: int
    rejects: tuple[tuple[int, str], ...] = ()  # (line, reason), the first 100

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "lines": self.lines, "added": self.added,
                "rejected": self.rejected,
                "rejects": [{"line": n, "reason": r} for n, r in self.rejects]}


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one caller-ID verification sweep did."""

    suspended: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"suspended": list(self.suspended), "disabled": list(self.disabled)}
