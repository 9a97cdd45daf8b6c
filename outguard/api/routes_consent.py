"""The consent ledger: a number's history, grants, revocations (any channel: this API,
the CLI, an import, the dialplan), CSV imports, and reassigned-number results."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from outguard import consent as consent_view
from outguard import views
from outguard.api import context as cx
from outguard.api.core import Param, field_of, json_body, ok, route, spooled_body
from outguard.api.routes_parties import e164_of, parse_time
from outguard.store.consent import ConsentInput
from outguard.store.consent_files import read_consents, read_reassigned
from rules.model import Purpose

NUMBER = Param("number", "path", required=True, description="the callee's number")
_SCOPE = {
    "tenant": {"type": "string"}, "campaign": {"type": "string"},
    "purpose": {"type": "string", "enum": [p.value for p in Purpose]},
    "source": {"type": "string", "description": "web_form, ivr, call, sms, letter ..."},
    "evidence": {"type": "string"}, "at": {"type": "string", "format": "date-time"},
}


@route("GET", "/api/consent/{number}", tag="consent", params=(NUMBER,))
async def consent_show(request: web.Request) -> web.Response:
    """A number's consent history, the consents in force, those a reassigned number's
    disconnect date voids (``void``), and the lists it is on."""
    number = e164_of(request, request.match_info["number"])
    store = cx.store(request)
    body = await store.run(consent_view.summary, store.store, number, datetime.now(UTC))
    return ok(views.masked(body, cx.mask(request)))


async def _record(request: web.Request, action: str) -> web.Response:
    data = await json_body(request)
    item = ConsentInput(
        number=request.match_info["number"], action=action, channel="api",
        source=field_of(data, "source", required=True),
        tenant=field_of(data, "tenant", str, None),
        campaign=field_of(data, "campaign", str, None),
        purpose=field_of(data, "purpose", str, None),
        list_name=field_of(data, "list", str, "consent") if action == "grant" else None,
        evidence=field_of(data, "evidence", str, ""),
        at=parse_time(field_of(data, "at", str, None), "at"),
        expires_at=parse_time(field_of(data, "expires_at", str, None), "expires_at"),
    )
    region = cx.screener(request).policy.default_region
    record, listed = await cx.store(request).record_consent(item, region=region,
                                                            actor=cx.actor(request))
    return ok(views.masked({**record.as_dict(), "listed_on": listed}, cx.mask(request)), 201)


@route("POST", "/api/consent/{number}/grant", tag="consent", role="admin", params=(NUMBER,),
       body={"type": "object", "required": ["tenant", "source"], "properties": {
           **_SCOPE, "list": {"type": "string"},
           "expires_at": {"type": "string", "format": "date-time"}}})
async def consent_grant(request: web.Request) -> web.Response:
    """Record a consent with its provenance; it exempts only the calls it covers."""
    return await _record(request, "grant")


@route("POST", "/api/consent/{number}/revoke", tag="consent", role="reviewer",
       params=(NUMBER,), body={"type": "object", "required": ["source"], "properties": _SCOPE})
async def consent_revoke(request: web.Request) -> web.Response:
    """Record a revocation (any reasonable means); it takes effect on the next call."""
    return await _record(request, "revoke")


@route("POST", "/api/consent/import", tag="consent", role="admin", body_type="text/csv")
async def consent_import(request: web.Request) -> web.Response:
    """Record grants and revocations from a CSV body, all or nothing."""
    store = cx.store(request)
    region = cx.screener(request).policy.default_region
    limit = cx.settings(request).api.max_body_bytes
    async with spooled_body(request, limit, "a consent import", ".csv") as path:
        items = await store.run(read_consents, path, region=region, label="request body")
        ids = await store.import_consents(items, actor=cx.actor(request))
    body: dict[str, Any] = {"recorded": len(ids)}
    return ok(body)


@route("POST", "/api/consent/reassigned/{name}", tag="consent", role="admin",
       body_type="text/csv",
       params=(Param("name", "path", required=True, description="a reassigned list"),))
async def consent_reassigned(request: web.Request) -> web.Response:
    """Import reassigned-number results (number,disconnected or the RND's number,date,result)."""
    store = cx.store(request)
    region = cx.screener(request).policy.default_region
    limit = cx.settings(request).api.max_body_bytes
    async with spooled_body(request, limit, "a reassigned import", ".csv") as path:
        rows = await store.run(read_reassigned, path, region=region, label="request body")
        count = await store.add_reassigned(request.match_info["name"], rows,
                                           actor=cx.actor(request))
    return ok({"list": request.match_info["name"], "numbers": count})
