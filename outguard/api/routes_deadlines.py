"""Complaint deadlines over HTTP: the regulators' channels and their figures, the open
complaints by deadline, and closing one (audited: who, when, what was done)."""

from __future__ import annotations

from aiohttp import web

from outguard import views
from outguard.api import context as cx
from outguard.api.core import Param, field_of, json_body, ok, query_int, route
from outguard.enforcement.deadlines import DUE_SOON_S


@route("GET", "/api/complaints/channels", tag="complaints")
async def complaint_channels(request: web.Request) -> web.Response:
    """The regulators' complaint channels in force: each response deadline, its unit
    (working days on a holiday calendar, or days), whether it is law or practice, and
    warnings about calendars whose known years end soon."""
    enforcer = cx.enforcer(request)
    deadlines = enforcer.config.deadlines
    return ok({"due_soon_s": DUE_SOON_S,
               "channels": [c.as_dict() for c in deadlines.channels.values()],
               "calendar_warnings": deadlines.calendar_warnings(enforcer.clock())})


@route("GET", "/api/complaints/due", tag="complaints", params=(
        Param("within_days", type="integer",
              description="only those due within N days (overdue included); default all"),))
async def complaints_due(request: web.Request) -> web.Response:
    """Open complaints from regulators' channels, nearest deadline first, each with its
    state (overdue, due_soon, open), and counts by state."""
    within = query_int(request, "within_days", -1, lo=-1, hi=366)
    enforcer = cx.enforcer(request)
    rows = await enforcer.complaints_due(None if within < 0 else within * 86400.0)
    now = enforcer.clock()
    mask = cx.mask(request)
    items = [views.complaint(c, mask, now) for c in rows]
    counts = {state: sum(1 for i in items if i["deadline"] == state)
              for state in ("overdue", "due_soon", "open")}
    counts["calendar_unknown"] = sum(1 for i in items if i["calendar_unknown"])
    return ok({"counts": counts, "complaints": items})


@route("POST", "/api/complaints/{id}/close", tag="complaints", role="reviewer",
       params=(Param("id", "path", type="integer", required=True),),
       body={"type": "object", "required": ["resolution"],
             "properties": {"resolution": {"type": "string",
                                           "description": "what was done"}}})
async def close_complaint(request: web.Request) -> web.Response:
    """Close a complaint, saying what was done; the audit trail keeps who and when (409
    when it is already closed)."""
    data = await json_body(request)
    try:
        complaint_id = int(request.match_info["id"])
    except ValueError:
        complaint_id = -1
    c = await cx.enforcer(request).close_complaint(
        complaint_id, resolution=field_of(data, "resolution", str, ""),
        actor=cx.actor(request))
    return ok(views.complaint(c, cx.mask(request)))
