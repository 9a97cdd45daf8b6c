"""Suspensions, lifts, disables, party status, appeals, complaints, marks and risk figures,
all through the enforcement facade (``outguard.enforcement.api.Enforcer``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from outguard import views
from outguard.api import context as cx
from outguard.api.core import (
    BadRequest,
    Param,
    field_of,
    id_param,
    json_body,
    ok,
    query_int,
    route,
    spooled_body,
    upload_name,
)
from outguard.errors import InvalidInput
from outguard.figures import DEFINITIONS
from outguard.store.base import COMPLAINT_CATEGORIES
from rules.model import PartyKind

KINDS = [k.value for k in PartyKind]
PARTY = {"kind": {"type": "string", "enum": KINDS}, "key": {"type": "string"}}
KIND_KEY = (Param("kind", "path", required=True, description=" | ".join(KINDS)),
            Param("key", "path", required=True))
APPEAL_ID = Param("id", "path", "integer", required=True)


def _kind(value: str) -> PartyKind:
    try:
        return PartyKind(value)
    except ValueError:
        raise InvalidInput(f"party kind must be one of {', '.join(KINDS)}", field="kind") from None


def _party(data: dict[str, Any]) -> tuple[PartyKind, str]:
    return _kind(field_of(data, "kind", required=True)), field_of(data, "key", required=True)


def _appeal_id(request: web.Request) -> int:
    return id_param(request, "appeal id")


# -- suspensions ---------------------------------------------------------------------------

@route("GET", "/api/suspensions", tag="enforcement", params=(
    Param("active", description="true (default): only active ones; false: all"),
    Param("kind", description=" | ".join(KINDS))))
async def list_suspensions(request: web.Request) -> web.Response:
    """Suspensions, active now by default, oldest first."""
    active = request.query.get("active", "true").lower() not in ("false", "0", "no")
    kind = _kind(request.query["kind"]) if request.query.get("kind") else None
    rows = await cx.enforcer(request).list_suspensions(active_only=active, kind=kind)
    mask = cx.mask(request)
    return ok([views.suspension(s, mask) for s in rows])


@route("POST", "/api/suspend", tag="enforcement", role="admin", body={
    "type": "object", "required": ["kind", "key", "reason"], "properties": {
        **PARTY, "reason": {"type": "string"},
        "duration_s": {"type": "number", "description": "absent: the policy's next grade"},
        "permanent": {"type": "boolean"}}})
async def suspend(request: web.Request) -> web.Response:
    """Suspend a party (封号) now, for a duration or the policy's next graded step."""
    data = await json_body(request)
    kind, key = _party(data)
    duration = field_of(data, "duration_s", float, None)
    if duration is not None and duration <= 0:
        raise BadRequest("duration_s must be positive", field="duration_s")
    s = await cx.enforcer(request).suspend(
        kind, key, reason=field_of(data, "reason", required=True), actor=cx.actor(request),
        duration_s=duration, permanent=field_of(data, "permanent", bool, False))
    return ok(views.suspension(s, cx.mask(request)), 201)


@route("POST", "/api/lift", tag="enforcement", role="admin", body={
    "type": "object", "required": ["kind", "key", "reason"], "properties": {
        **PARTY, "reason": {"type": "string"}, "clear_strike": {"type": "boolean"}}})
async def lift(request: web.Request) -> web.Response:
    """Lift every active suspension of a party (解封)."""
    data = await json_body(request)
    kind, key = _party(data)
    lifted = await cx.enforcer(request).lift(
        kind, key, actor=cx.actor(request), reason=field_of(data, "reason", required=True),
        clear_strike=field_of(data, "clear_strike", bool, False))
    mask = cx.mask(request)
    return ok({"lifted": [views.suspension(s, mask) for s in lifted]})


@route("POST", "/api/disable", tag="enforcement", role="admin", body={
    "type": "object", "required": ["kind", "key", "reason"],
    "properties": {**PARTY, "reason": {"type": "string"}}})
async def disable(request: web.Request) -> web.Response:
    """Disable a party permanently until a person lifts it."""
    data = await json_body(request)
    kind, key = _party(data)
    s = await cx.enforcer(request).disable(
        kind, key, actor=cx.actor(request), reason=field_of(data, "reason", required=True))
    return ok(views.suspension(s, cx.mask(request)), 201)


@route("GET", "/api/status/{kind}/{key}", tag="enforcement", params=KIND_KEY)
async def status(request: web.Request) -> web.Response:
    """Is the party banned, why, until when; strikes, history and appeals."""
    st = await cx.enforcer(request).status(_kind(request.match_info["kind"]),
                                           request.match_info["key"])
    return ok(views.masked(st.to_dict(), cx.mask(request)))


# -- appeals -------------------------------------------------------------------------------

@route("GET", "/api/appeals", tag="appeals", params=(
    Param("state", description="pending | approved | rejected"), Param("party")))
async def list_appeals(request: web.Request) -> web.Response:
    """Appeals (申诉), oldest first; state=pending is the review queue."""
    state = request.query.get("state") or None
    if state not in (None, "pending", "approved", "rejected"):
        raise InvalidInput("state must be pending, approved or rejected", field="state")
    rows = await cx.enforcer(request).list_appeals(state, party_key=request.query.get("party") or None)
    mask = cx.mask(request)
    return ok([views.appeal(a, mask) for a in rows])


@route("GET", "/api/appeals/{id}", tag="appeals", params=(APPEAL_ID,))
async def get_appeal(request: web.Request) -> web.Response:
    """One appeal."""
    a = await cx.store(request).get_appeal(_appeal_id(request))
    return ok(views.appeal(a, cx.mask(request)))


@route("POST", "/api/appeals", tag="appeals", role="reviewer", body={
    "type": "object", "required": ["kind", "key", "text"], "properties": {
        **PARTY, "text": {"type": "string"}, "evidence": {"type": "string"}}})
async def submit_appeal(request: web.Request) -> web.Response:
    """File an appeal against a party's current suspension."""
    data = await json_body(request)
    kind, key = _party(data)
    a = await cx.enforcer(request).submit_appeal(
        kind, key, text=field_of(data, "text", required=True),
        evidence=field_of(data, "evidence", str, ""), actor=cx.actor(request))
    return ok(views.appeal(a, cx.mask(request)), 201)


@route("POST", "/api/appeals/{id}/approve", tag="appeals", role="reviewer", params=(APPEAL_ID,),
       body={"type": "object", "required": ["decision"], "properties": {
           "decision": {"type": "string"}, "clear_strike": {"type": "boolean"}}})
async def approve_appeal(request: web.Request) -> web.Response:
    """Approve an appeal: the party's suspensions are lifted."""
    data = await json_body(request)
    a = await cx.enforcer(request).approve_appeal(
        _appeal_id(request), reviewer=cx.actor(request),
        decision=field_of(data, "decision", required=True),
        clear_strike=field_of(data, "clear_strike", bool, False))
    return ok(views.appeal(a, cx.mask(request)))


@route("POST", "/api/appeals/{id}/reject", tag="appeals", role="reviewer", params=(APPEAL_ID,),
       body={"type": "object", "required": ["decision"],
             "properties": {"decision": {"type": "string"}}})
async def reject_appeal(request: web.Request) -> web.Response:
    """Reject an appeal with a reason; the suspension stays."""
    data = await json_body(request)
    a = await cx.enforcer(request).reject_appeal(
        _appeal_id(request), reviewer=cx.actor(request),
        decision=field_of(data, "decision", required=True))
    return ok(views.appeal(a, cx.mask(request)))


# -- complaints and marks ------------------------------------------------------------------

@route("GET", "/api/complaints", tag="complaints", params=(
    Param("caller_id"), Param("days", type="integer", description="last N days (30)")))
async def list_complaints(request: web.Request) -> web.Response:
    """Complaints and callee marks, by caller ID and/or recent days."""
    days = query_int(request, "days", 30, lo=1, hi=3660)
    since = datetime.fromtimestamp(datetime.now(UTC).timestamp() - days * 86400, UTC)
    caller = request.query.get("caller_id")
    from outguard.api.routes_parties import e164_of
    rows = await cx.store(request).list_complaints(
        caller_id=e164_of(request, caller) if caller else None, since=since)
    mask = cx.mask(request)
    return ok([views.complaint(c, mask) for c in rows])


@route("POST", "/api/complaints", tag="complaints", role="reviewer", body={
    "type": "object", "required": ["callee", "caller_id"], "properties": {
        "kind": {"type": "string", "enum": ["complaint", "mark"]},
        "callee": {"type": "string"}, "caller_id": {"type": "string"},
        "category": {"type": "string", "enum": list(COMPLAINT_CATEGORIES)},
        "source": {"type": "string"}, "tenant": {"type": "string"},
        "account": {"type": "string"}, "note": {"type": "string"},
        "at": {"type": "string", "format": "date-time",
               "description": "when the person complained (default now)"},
        "received": {"type": "string", "format": "date-time",
                     "description": "when the company received it (default now)"}}})
async def add_complaint(request: web.Request) -> web.Response:
    """Record a complaint (e.g. from 12321) or a callee's harassment mark (标记). A
    complaint from a regulator's channel (source 12321, 12300, fcc, ofcom) gets its
    response deadline, counted from ``received``."""
    data = await json_body(request)
    kind = field_of(data, "kind", str, "complaint")
    enforcer = cx.enforcer(request)
    common: dict[str, Any] = {
        "category": field_of(data, "category", str, "harassment"),
        "tenant": field_of(data, "tenant", str, None), "actor": cx.actor(request),
        "note": field_of(data, "note", str, "")}
    callee, caller = field_of(data, "callee", required=True), field_of(data, "caller_id", required=True)
    if kind == "mark":
        c = await enforcer.add_mark(callee, caller, source=field_of(data, "source", str, "app_mark"),
                                    **common)
    elif kind == "complaint":
        from outguard.api.routes_parties import parse_time
        c = await enforcer.add_complaint(
            callee, caller, source=field_of(data, "source", str, "manual"),
            account=field_of(data, "account", str, None),
            at=parse_time(field_of(data, "at", str, None), "at"),
            received=parse_time(field_of(data, "received", str, None), "received"), **common)
    else:
        raise InvalidInput("kind must be complaint or mark", field="kind")
    return ok(views.complaint(c, cx.mask(request)), 201)


@route("POST", "/api/complaints/import", tag="complaints", heavy=True, role="admin", body_type="text/csv",
       params=(Param("kind", description="complaint (default) or mark"),
               Param("filename", description="the file's name, for messages (default upload)")))
async def import_complaints(request: web.Request) -> web.Response:
    """Import complaints from CSV (the body; header callee,caller_id,category,source
    [,tenant,account,at,note], or a 12321-style export with Chinese headers); bad rows
    are reported by line, good rows kept."""
    kind = request.query.get("kind", "complaint")
    if kind not in ("complaint", "mark"):
        raise InvalidInput("kind must be complaint or mark", field="kind")
    limit = cx.settings(request).api.max_body_bytes
    shown = upload_name(request.query.get("filename"))
    async with spooled_body(request, limit, "a complaints file", ".csv") as path:
        try:
            result = await cx.enforcer(request).import_complaints(
                path, actor=cx.actor(request), kind=kind)
        except InvalidInput as exc:  # name the person's file, not the spool's
            raise InvalidInput(exc.message.replace(path, shown), **exc.details) from None
    body = result.to_dict()
    body["path"] = shown
    return ok(body)


# -- risk ----------------------------------------------------------------------------------

RISK_SORTS = ("key", "tenant", "state", "until", "attempts", "connect_rate",
              "short_call_ratio", "complaints", "marks", "verified_until")


@route("GET", "/api/risk", tag="enforcement", heavy=True, params=(
    Param("kind", description="account (default) | caller_id | tenant"),
    Param("window_s", type="integer", description="window in seconds (86400)"),
    Param("q", description="only parties whose key, name or tenant contains this"),
    Param("state", description="only parties in this state (active, suspended, disabled,"
          " unknown)"),
    Param("tenant", description="only this tenant's parties"),
    Param("sort", description=f"{' | '.join(RISK_SORTS)}; -name for descending"
          " (default -attempts)"),
    Param("limit", type="integer", description="page size (default 1000, at most 5000)"),
    Param("offset", type="integer", description="skip this many matching rows")))
async def risk_table(request: web.Request) -> web.Response:
    """Parties of a kind with their rolling figures (attempts, connect rate, short-call
    ratio, complaints, marks) and their state now, searched, sorted and paged here;
    ``total`` counts the matching rows. Caller IDs carry their real-name verification."""
    kind = _kind(request.query.get("kind", "account"))
    window = float(query_int(request, "window_s", 86400, lo=60, hi=90 * 86400))
    limit = query_int(request, "limit", 1000, lo=1, hi=5000)
    offset = query_int(request, "offset", 0, lo=0, hi=10_000_000)
    sort = request.query.get("sort", "-attempts")
    if sort.lstrip("-") not in RISK_SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(RISK_SORTS)} (- for descending)",
                           field="sort", value=sort)
    q = request.query.get("q", "").strip().lower()
    state_filter, tenant_filter = request.query.get("state"), request.query.get("tenant")
    enforcer, store = cx.enforcer(request), cx.store(request)
    figures = {f.key: f.to_dict() for f in enforcer.risk_table(kind, window_s=window)}
    active = await enforcer.list_suspensions(active_only=True, kind=kind)
    banned = {s.party_key: ("disabled" if s.ends_at is None else "suspended", s) for s in active}
    extra: dict[str, dict[str, Any]] = {}
    if kind is PartyKind.ACCOUNT:
        accounts = await store.list_accounts()
        known = {a.id: (a.tenant_id, a.state) for a in accounts}
        extra = {a.id: {"name": a.name, "account_kind": a.kind} for a in accounts}
    elif kind is PartyKind.CALLER_ID:
        callers = await store.list_caller_ids()
        known = {c.e164: (c.tenant_id, c.state) for c in callers}
        extra = {c.e164: {"verification": c.verification, "type": c.type,
                          "verified_until": views.iso(c.verified_until)} for c in callers}
    else:
        tenants = await store.list_tenants()
        known = {t.id: (t.id, t.state) for t in tenants}
        extra = {t.id: {"name": t.name} for t in tenants}
    rows = []
    mask = cx.mask(request)
    for key in set(known) | set(figures) | set(banned):
        tenant, state = known.get(key, (None, "unknown"))
        ban = banned.get(key)
        state = ban[0] if ban else state
        shown = mask(key) if kind is PartyKind.CALLER_ID else key
        more = extra.get(key, {})
        if (state_filter and state != state_filter) or (tenant_filter and tenant != tenant_filter):
            continue
        if q and not any(q in str(v).lower() for v in (shown, tenant or "", more.get("name", ""))):
            continue
        row: dict[str, Any] = {
            "kind": kind.value, "key": shown, "tenant": tenant, "state": state,
            "until": views.iso(ban[1].ends_at) if ban else None,
            "reason": ban[1].reason if ban else "", "figures": figures.get(key), **more}
        rows.append(row)
    _sort_rows(rows, sort)
    return ok({"kind": kind.value, "window_s": window, "total": len(rows), "offset": offset,
               "limit": limit, "sort": sort, "rows": rows[offset:offset + limit],
               "definitions": DEFINITIONS})


def _sort_rows(rows: list[dict[str, Any]], sort: str) -> None:
    """Sort in place; rows without the figure go last either way, ties by key."""
    name = sort.lstrip("-")
    descending = sort.startswith("-")

    def value(row: dict[str, Any]) -> Any:
        if name in ("key", "tenant", "state", "until", "verified_until"):
            return row.get(name)
        return (row["figures"] or {}).get(name)

    rows.sort(key=lambda r: r["key"])
    present = [r for r in rows if value(r) is not None]
    absent = [r for r in rows if value(r) is None]
    present.sort(key=value, reverse=descending)
    rows[:] = present + absent


@route("GET", "/api/risk/{kind}/{key}", tag="enforcement", params=(
    *KIND_KEY, Param("window_s", type="integer")))
async def risk_one(request: web.Request) -> web.Response:
    """One party's rolling figures."""
    window = float(query_int(request, "window_s", 86400, lo=60, hi=90 * 86400))
    enforcer = cx.enforcer(request)
    kind, key = await enforcer.require_party(_kind(request.match_info["kind"]),
                                             request.match_info["key"])
    fig = enforcer.risk(kind, key, window_s=window)
    return ok(views.masked(fig.to_dict(), cx.mask(request)))
