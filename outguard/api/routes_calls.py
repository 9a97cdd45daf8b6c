"""The dry run, test calls, the call log, reports, the policy (show, validate, reload),
screening stats and the audit trail."""

from __future__ import annotations

import asyncio
import collections
import functools
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from outguard import dialplan_vars as dv
from outguard.api import context as cx
from outguard import views
from outguard.checking import dry_run, parse_at
from outguard.config import ConfigError
from outguard.errors import InvalidInput
from outguard.api.core import (
    JSON_MAX_BYTES,
    BadRequest,
    Param,
    field_of,
    json_body,
    ok,
    query_int,
    read_body,
    route,
)
from outguard.api.offload import OFFLOAD
from outguard.api.policies import issues, summarise
from outguard.reports import call_report, parse_by, report_csv
from outguard.api.testcall import FORMATS, Target, check_dial, find_call, place
from outguard.server import ENFORCER, read_policy
from outguard.service import ScreeningUnavailable

#: the largest policy text POST /api/policy/validate takes (413 above)
POLICY_MAX_BYTES = JSON_MAX_BYTES

SINCE = Param("since", description="ISO 8601 time or epoch seconds (default: days ago)")
UNTIL = Param("until", description="ISO 8601 time or epoch seconds (default: now)")


def _time_param(request: web.Request, name: str, default: float) -> float:
    text = request.query.get(name)
    if not text:
        return default
    wrong = BadRequest(f"query parameter {name!r} must be ISO 8601 or epoch seconds"
                       " (years 1970..9999)", field=name)
    try:
        value = float(text)
    except ValueError:
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            raise wrong from None
        value = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    if not 0 <= value < 253402300800:  # 9999-12-31: every later step can show it
        raise wrong
    return value


@route("POST", "/api/check", tag="screening", heavy=True, body={
    "type": "object", "required": ["number", "account"], "properties": {
        "number": {"type": "string"}, "account": {"type": "string"},
        "caller_id": {"type": "string"}, "tenant": {"type": "string"},
        "purpose": {"type": "string"}, "campaign": {"type": "string"},
        "at": {"type": "string", "description": "ISO 8601 or HH:MM (policy time zone)"}}})
async def check(request: web.Request) -> web.Response:
    """Dry run: the verdict for a would-be call and every rule's outcome, nothing placed.

    Uses the live snapshot and counters (in cluster mode the cluster's counts, read from
    Redis); counts nothing.
    """
    data = await json_body(request)
    screener = cx.screener(request)
    snap = screener.snapshot
    if snap is None:
        raise ScreeningUnavailable("no screening snapshot loaded yet")
    at = parse_at(field_of(data, "at", str, None), snap.policy.timezone)
    call = functools.partial(
        dry_run, snap, number=field_of(data, "number", required=True),
        account=field_of(data, "account", required=True),
        caller_id=field_of(data, "caller_id", str, ""), tenant=field_of(data, "tenant", str, ""),
        purpose=field_of(data, "purpose", str, ""), campaign=field_of(data, "campaign", str, ""),
        at=at, default_tenant=screener.default_tenant)
    counters = await screener.counts_for(call, at.timestamp())  # cluster mode: Redis's
    return ok(call(counters).as_dict(cx.mask(request)))


@route("GET", "/api/calls", tag="screening", heavy=True, params=(
    SINCE, UNTIL, Param("limit", type="integer", description="newest N (default 100)"),
    Param("account"), Param("verdict", description="allow, block or failed"),
    Param("pbx", description="only calls from this PBX (its [[ari]]/[[ami]] name)")))
async def list_calls(request: web.Request) -> web.Response:
    """The call log, newest first (default: the last day); each call names its PBX."""
    now = time.time()
    since = _time_param(request, "since", now - 86400)
    until = _time_param(request, "until", now + 1)
    limit = query_int(request, "limit", 100, lo=1, hi=5000)
    account, verdict = request.query.get("account"), request.query.get("verdict")
    pbx = request.query.get("pbx")
    store = cx.store(request)

    def newest() -> list[Any]:
        keep: collections.deque[Any] = collections.deque(maxlen=limit)
        for c in store.store.iter_calls(since, until):
            if ((account and c.call.account != account) or (verdict and c.call.verdict != verdict)
                    or (pbx is not None and c.call.pbx != pbx)):
                continue
            keep.append(c)
        return list(reversed(keep))

    mask = cx.mask(request)
    return ok([views.call(c, mask) for c in await store.run(newest)])


@route("GET", "/api/calls/{decision_id}", tag="screening",
       params=(Param("decision_id", "path", required=True),))
async def get_call(request: web.Request) -> web.Response:
    """One decision from the call log, with its outcome."""
    c = await cx.store(request).get_call(request.match_info["decision_id"])
    return ok(views.call(c, cx.mask(request)))


@route("GET", "/api/report", tag="reports", heavy=True, params=(
    Param("by", description="comma-separated: day|hour, pbx, tenant, account (default day)"),
    SINCE, UNTIL, Param("days", type="integer", description="window when since is absent (7)"),
    Param("tenant"), Param("account"), Param("pbx", description="only this PBX's calls"),
    Param("fill", description="true: every day or hour of the window has a row, empty"
          " ones with zero calls (by=day or by=hour alone)"),
    Param("format", description="json (default) or csv (a download, one row per group)")))
async def report(request: web.Request) -> web.StreamResponse:
    """Attempts, allowed, blocked by reason, answered, connect rate, average duration,
    short-call ratio and complaints, grouped."""
    by = parse_by(request.query.get("by", "day"))
    days = query_int(request, "days", 7, lo=1, hi=3660)
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise BadRequest("format must be json or csv", field="format")
    fill = request.query.get("fill", "").lower() in ("1", "true", "yes")
    now = time.time()
    since = _time_param(request, "since", now - days * 86400)
    until = _time_param(request, "until", now + 1)
    tenant, account = request.query.get("tenant"), request.query.get("account")
    pbx = request.query.get("pbx")
    store, policy = cx.store(request), cx.screener(request).policy
    body = await store.run(lambda: call_report(store.store, policy, by=by, since=since,
                                               until=until, tenant=tenant, account=account,
                                               fill=fill, pbx=pbx))
    body.update(since=views.iso(since), until=views.iso(until))
    if fmt == "csv":
        day = datetime.fromtimestamp(since, UTC).strftime("%Y%m%d")
        name = f"outguard-report-{'-'.join(by) or 'total'}-{day}.csv"
        return web.Response(body=report_csv(body).encode("utf-8-sig"), headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"'})
    return ok(body)


@route("GET", "/api/policy", tag="policy")
async def show_policy(request: web.Request) -> web.Response:
    """The policy in use: rules in evaluation order, lists, windows."""
    return ok(summarise(cx.screener(request).policy))


@route("POST", "/api/policy/validate", tag="policy", heavy=True, body_type="text/plain")
async def validate_policy(request: web.Request) -> web.Response:
    """Check policy text (TOML, the request body, UTF-8, at most 1 MiB: 413 above) with
    every check start and reload make, without using it; lists every problem.

    Includes may name presets, and files in the configured ``policy_dir`` only. The check
    runs in a worker process, never on the loop that screens calls."""
    raw = await read_body(request, POLICY_MAX_BYTES, "a policy")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ok({"valid": False, "issues": [{
            "file": "<request>", "line": raw.count(b"\n", 0, exc.start) + 1, "key": "",
            "message": f"not UTF-8 text (byte {exc.start}: {exc.reason})"}]})
    return ok(await request.app[OFFLOAD].check_policy(text, cx.settings(request).policy_dir
                                                       or None))


@route("POST", "/api/policy/reload", tag="policy", heavy=True, role="admin")
async def reload_policy(request: web.Request) -> web.Response:
    """Read the policy file again and use it (the old one stays if it is invalid)."""
    settings = cx.settings(request)
    policy = await asyncio.to_thread(read_policy, settings)  # PolicyError -> 422, all issues
    enforcer = request.app.get(ENFORCER)
    if enforcer is not None:
        enforcer.set_policy(policy)  # its [enforcement] table first: nothing changes if bad
    snap = await cx.screener(request).set_policy(policy)
    return ok({"reloaded": True, "source": policy.source, "rules": len(policy.rules),
               "snapshot": dict(snap.stats), "warnings": list(snap.warnings[:20])})


def _percentile(values: list[int], q: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@route("GET", "/api/stats", tag="screening")
async def stats(request: web.Request) -> web.Response:
    """Screening since the service started: decisions, verdicts, reasons, latency, live
    calls, the snapshot in use and rule hit counts."""
    screener = cx.screener(request)
    st, snap = screener.stats, screener.snapshot
    return ok({
        "decisions": st.decisions, "allowed": st.allowed, "blocked": st.blocked,
        "failed": st.failed,
        "by_reason": dict(st.by_reason), "live_calls": screener.live_calls(),
        "latency_us": {"p50": _percentile(st.latency_us, 0.5),
                       "p99": _percentile(st.latency_us, 0.99)},
        "snapshot": None if snap is None else {
            "built_at": snap.built_at.isoformat(), "stats": dict(snap.stats),
            "warnings": len(snap.warnings)},
        "rule_hits": screener.hits.as_dict(),
    })


@route("GET", "/api/audit", tag="reports", heavy=True, params=(
    Param("limit", type="integer"), Param("party"), SINCE,
    Param("order", description="asc (default: oldest first from since) or desc (newest first)"),
    Param("before", type="integer", description="only records with a smaller id (the next"
          " page of a desc listing: the last id seen)"),
    Param("actor", description="only this user's (or trigger's) changes"),
    Param("action", description="only this action, or this family (list: list.create, ...)")))
async def audit(request: web.Request) -> web.Response:
    """The audit trail (who changed what), oldest first from `since`, or newest first
    page by page (order=desc, before=ID)."""
    limit = query_int(request, "limit", 100, lo=1, hi=10000)
    since = request.query.get("since")
    order = request.query.get("order", "asc")
    if order not in ("asc", "desc"):
        raise BadRequest("order must be asc or desc", field="order")
    before = request.query.get("before")
    records = await cx.store(request).list_audit(
        since=datetime.fromtimestamp(_time_param(request, "since", 0), UTC) if since else None,
        party_key=request.query.get("party") or None, limit=limit,
        before_id=query_int(request, "before", 0, lo=1, hi=2**62) if before else None,
        newest_first=order == "desc", actor=request.query.get("actor") or None,
        action=request.query.get("action") or None)
    mask = cx.mask(request)
    return ok([views.audit(r, mask) for r in records])


@route("POST", "/api/test-call", tag="screening", heavy=True, role="admin", body={
    "type": "object", "required": ["number", "account"], "properties": {
        "number": {"type": "string", "pattern": "^\\+?[0-9]{2,20}$"},
        "account": {"type": "string"}, "caller_id": {"type": "string"},
        "tenant": {"type": "string"}, "purpose": {"type": "string"},
        "context": {"type": "string", "description": "default outguard-ari"},
        "pbx": {"type": "string",
                "description": "the PBX to call through (its [[ari]] name; default the first)"},
        "hold_s": {"type": "number"}, "timeout_s": {"type": "number"},
        "formats": {"type": "string", "description": "codecs offered, default ulaw,alaw"}}})
async def test_call(request: web.Request) -> web.Response:
    """Place a real test call through the PBX and answer with outguard's decision and the
    outcome (takes as long as the call; ``outguard call`` over HTTP).

    ARI originate of Local/NUMBER@CONTEXT with the account set; 502 when ARI cannot be
    reached; ``decision`` is null when outguard gave no verdict.
    """
    data = await json_body(request)
    settings = cx.settings(request)
    number = field_of(data, "number", required=True)
    account = field_of(data, "account", required=True)
    context = field_of(data, "context", str, "outguard-ari")
    formats = field_of(data, "formats", str, FORMATS)
    check_dial(number, context, formats)
    timeout = min(field_of(data, "timeout_s", float, 60.0), 300.0)
    variables = {f"__{dv.ACCOUNT}": account}
    for key, name in ((dv.TENANT, "tenant"), (dv.PURPOSE, "purpose")):
        if field_of(data, name, str, ""):
            variables[f"__{key}"] = data[name]
    try:
        a = settings.ari_target(field_of(data, "pbx", str, "") or None)
    except ConfigError as err:
        raise InvalidInput(str(err), field="pbx") from None
    target = Target(a.url, a.user, a.password, settings.store)
    started = time.time()
    seen = await place(target, number, variables, context, field_of(data, "caller_id", str, ""),
                       timeout, field_of(data, "hold_s", float, None), formats)
    store = cx.store(request)
    logged = await store.run(find_call, store.store, seen["dialled"], started, want_outcome=True)
    mask = cx.mask(request)
    return ok({"number": mask(number), "account": account, "answered": seen["answered"],
               "hangup_cause": seen["cause"], "hangup_cause_text": seen["cause_txt"],
               "decision": views.call(logged, mask) if logged else None})
