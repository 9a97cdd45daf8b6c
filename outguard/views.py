"""Records as JSON-able dicts, shared by the HTTP API and the CLI's ``--json`` output.

Numbers go through ``mask`` (the API masks per ``api.show_numbers``, the one masking
setting, with ``outguard.privacy.masked``; the CLI, which reads the store file directly,
shows them whole). Times are ISO 8601 UTC strings.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from outguard.enforcement.deadlines import deadline_state
from outguard.privacy import masked as masked_number
from outguard.store.base import (
    Account,
    AccountMapping,
    Appeal,
    AuditRecord,
    CallerId,
    Complaint,
    Entry,
    ListRecord,
    LoggedCall,
    Suspension,
    Tenant,
    User,
    to_dt,
)
from rules.model import RuleOutcome

if TYPE_CHECKING:
    from outguard.store.maintenance import TokenInfo

Mask = Callable[[str], str]


def plain(number: str) -> str:
    return number


def masker(show_numbers: bool) -> Mask:
    return plain if show_numbers else masked_number


def iso(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    dt = to_dt(value) if isinstance(value, (int, float)) else value
    return dt.isoformat() if dt is not None else None


def jsonable(value: Any) -> Any:
    """Dataclasses, enums, datetimes, tuples and mappings, recursively, as JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if hasattr(value, "items") and callable(value.items):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def tenant(t: Tenant) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "state": t.state, "settings": t.settings,
            "created_at": iso(t.created_at)}


def account(a: Account) -> dict[str, Any]:
    return {"id": a.id, "tenant": a.tenant_id, "kind": a.kind, "name": a.name,
            "state": a.state, "created_at": iso(a.created_at)}


def mapping(m: AccountMapping) -> dict[str, Any]:
    return {"id": m.id, "match_kind": m.match_kind, "pattern": m.pattern,
            "account": m.account_id, "priority": m.priority}


def caller_id(c: CallerId, mask: Mask = plain) -> dict[str, Any]:
    return {"e164": mask(c.e164), "tenant": c.tenant_id, "type": c.type,
            "verification": c.verification, "verified_until": iso(c.verified_until),
            "state": c.state, "created_at": iso(c.created_at)}


def user(u: User) -> dict[str, Any]:
    return {"name": u.name, "role": u.role, "disabled": u.disabled,
            "created_at": iso(u.created_at)}


def token(t: TokenInfo) -> dict[str, Any]:
    """An API token as the CLI and the API list it (never its secret)."""
    return {"id": t.id, "user": t.user, "role": t.role, "label": t.label,
            "created_at": seconds(t.created_at), "revoked": t.revoked_at is not None,
            "revoked_at": seconds(t.revoked_at)}


def seconds(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC to the second."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def list_record(r: ListRecord, entries: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": r.name, "kind": r.info.kind.value, "scope": r.info.scope.value,
           "scope_key": r.info.scope_key, "description": r.description,
           "imported_at": iso(r.info.imported_at), "released_at": iso(r.info.released_at),
           "created_at": iso(r.created_at)}
    if entries is not None:
        out["entries"] = entries
    return out


def entry(e: Entry, mask: Mask = plain) -> dict[str, Any]:
    return {"list": e.list_name, "e164": mask(e.e164), "expires_at": iso(e.expires_at),
            "created_at": iso(e.created_at), "source": e.source, "reason": e.reason,
            "evidence": e.evidence, "disconnected_at": iso(e.disconnected_at)}


def suspension(s: Suspension, mask: Mask = plain) -> dict[str, Any]:
    key = mask(s.party_key) if s.party_kind.value == "caller_id" else s.party_key
    return {"id": s.id, "party_kind": s.party_kind.value, "party_key": key,
            "reason": s.reason, "trigger": s.trigger, "started_at": iso(s.started_at),
            "ends_at": iso(s.ends_at), "permanent": s.ends_at is None,
            "created_by": s.created_by, "lifted_by": s.lifted_by,
            "lift_reason": s.lift_reason, "lifted_at": iso(s.lifted_at)}


def appeal(a: Appeal, mask: Mask = plain) -> dict[str, Any]:
    key = mask(a.party_key) if a.party_kind.value == "caller_id" else a.party_key
    return {"id": a.id, "party_kind": a.party_kind.value, "party_key": key,
            "suspension_id": a.suspension_id, "text": a.text, "evidence": a.evidence,
            "state": a.state.value, "reviewer": a.reviewer, "decision": a.decision,
            "created_at": iso(a.created_at), "decided_at": iso(a.decided_at)}


def complaint(c: Complaint, mask: Mask = plain, now: float | None = None) -> dict[str, Any]:
    """A complaint or mark; with its deadline (regulators' channels) and how it was
    closed. ``deadline`` is its state at ``now`` (default: the clock): closed, overdue,
    due_soon, open, or none (no deadline); ``calendar_unknown``: the deadline was counted
    Monday-Friday on a year its holiday calendar does not know (check it by hand)."""
    return {"id": c.id, "kind": c.kind, "caller_id": mask(c.caller_id),
            "reporter": mask(c.reporter) if c.reporter else c.reporter,
            "category": c.category, "source": c.source, "at": iso(c.at), "note": c.note,
            "tenant": c.tenant_id, "received_at": iso(c.received_at), "due_at": iso(c.due_at),
            "deadline": deadline_state(c, time.time() if now is None else now),
            "calendar_unknown": c.calendar_unknown,
            "closed_at": iso(c.closed_at), "closed_by": c.closed_by,
            "resolution": c.resolution}


def audit(r: AuditRecord, mask: Mask = plain) -> dict[str, Any]:
    key = mask(r.party_key) if r.party_kind == "caller_id" and r.party_key else r.party_key
    return {"id": r.id, "at": iso(r.at), "actor": r.actor, "action": r.action,
            "party_kind": r.party_kind, "party_key": key}


def call(c: LoggedCall, mask: Mask = plain) -> dict[str, Any]:
    k = c.call
    return {"decision_id": k.decision_id, "channel_id": k.channel_id, "adapter": k.adapter,
            "pbx": k.pbx, "tenant": k.tenant, "account": k.account, "caller_id": mask(k.caller_id),
            "destination": mask(k.destination), "verdict": k.verdict, "rule": k.rule,
            "reason": k.reason, "shadow": list(k.shadow), "decision_us": k.decision_us,
            "at": iso(k.at), "answered_at": iso(c.answered_at), "ended_at": iso(c.ended_at),
            "duration": c.duration, "cause": c.cause}


def outcome(o: RuleOutcome) -> dict[str, Any]:
    return {"rule": o.rule_id, "kind": o.kind, "mode": o.mode.value, "outcome": o.outcome,
            "reason": o.reason, "message": o.message, "figures": jsonable(o.figures),
            "decisive": o.decisive, "cause": o.cause}


NUMBER_KEYS = ("caller_id", "destination", "callee", "reporter", "e164", "number")


def masked(ev: Any, mask: Mask) -> Any:
    """A live event or facade record (decision, outcome, status, figures) as JSON, with
    numbers masked wherever they appear (recursively)."""
    if isinstance(ev, dict):
        out = {}
        caller_party = ev.get("party_kind", ev.get("kind")) == "caller_id"
        for key, value in ev.items():
            if isinstance(value, str) and (key in NUMBER_KEYS or (
                    caller_party and key in ("party_key", "key"))):
                out[key] = mask(value)
            else:
                out[key] = masked(value, mask)
        return out
    if isinstance(ev, (list, tuple)):
        return [masked(v, mask) for v in ev]
    return jsonable(ev)
