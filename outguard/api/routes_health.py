"""Caller-ID health: the connect-rate early warning per caller ID, its daily figures, and
the remediation tasks (号码认证 / 标记申诉) it opens, worked and closed through here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from outguard import views
from outguard.api import context as cx
from outguard.api.core import Param, field_of, id_param, json_body, ok, query_int, route
from outguard.enforcement import Enforcer
from outguard.enforcement.health_ops import MAX_DAYS, task_dict
from outguard.errors import InvalidInput
from outguard.figures import DEFINITIONS
from outguard.store.health import HealthTask

TASK_ID = Param("id", "path", "integer", required=True)
DAYS = Param("days", type="integer", description=f"days of daily figures (1-{MAX_DAYS})")
STATES = ("active", "open", "working", "closed")


def _settings(request: web.Request) -> dict[str, Any]:
    spec = cx.enforcer(request).config.health
    return {"enabled": spec.enabled, "window_s": spec.window_s, "baseline_s": spec.baseline_s,
            "min_calls": spec.min_calls, "min_baseline_calls": spec.min_baseline_calls,
            "drop": spec.drop, "min_points": spec.min_points, "cap_factor": spec.cap_factor}


@route("GET", "/api/caller-ids/health", tag="caller-id health", heavy=True, params=(DAYS,))
async def health_table(request: web.Request) -> web.Response:
    """Every caller ID seen recently: connect rate now against its own baseline, the
    early warning, its remediation task and its daily figures (policy time zone)."""
    days = query_int(request, "days", 7, lo=1, hi=MAX_DAYS)
    enforcer = cx.enforcer(request)
    rows = await enforcer.health_table(days=days)
    return ok({"timezone": enforcer.policy.timezone, "settings": _settings(request),
               "rows": views.masked(rows, cx.mask(request)), "definitions": DEFINITIONS})


@route("GET", "/api/caller-ids/{number}/health", tag="caller-id health", params=(
    Param("number", "path", required=True), DAYS))
async def health_one(request: web.Request) -> web.Response:
    """One caller ID's health: daily attempts, connect rate, short-call ratio, complaints
    and marks; the warning now; its throttle and tasks."""
    days = query_int(request, "days", 7, lo=1, hi=MAX_DAYS)
    health = await cx.enforcer(request).health(request.match_info["number"], days=days)
    return ok({**views.masked(health.to_dict(), cx.mask(request)),
               "settings": _settings(request)})


@route("GET", "/api/health-tasks", tag="caller-id health", params=(
    Param("state", description=" | ".join(STATES)), Param("caller_id")))
async def list_tasks(request: web.Request) -> web.Response:
    """Remediation tasks, oldest first (state=active: every task not closed)."""
    state = request.query.get("state") or None
    if state is not None and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}", field="state")
    rows = await cx.enforcer(request).list_health_tasks(
        state, caller_id=request.query.get("caller_id") or None)
    return ok(views.masked([task_dict(t) for t in rows], cx.mask(request)))


@route("GET", "/api/health-tasks/{id}", tag="caller-id health", params=(TASK_ID, DAYS))
async def get_task(request: web.Request) -> web.Response:
    """One task, with its caller ID's health (daily figures, the warning now)."""
    enforcer = cx.enforcer(request)
    task = await cx.store(request).get_health_task(id_param(request, "task id"))
    days = query_int(request, "days", 7, lo=1, hi=MAX_DAYS)
    health = await enforcer.health(task.caller_id, days=days)
    return ok(views.masked({**task_dict(task), "health": health.to_dict()}, cx.mask(request)))


def _text_body(name: str) -> dict[str, Any]:
    return {"type": "object", "required": [name], "properties": {name: {"type": "string"}}}


async def _worked(request: web.Request, name: str,
                  step: Callable[[Enforcer, int, str, str], Awaitable[HealthTask]]
                  ) -> web.Response:
    """A reviewer's step on the task in the path, with the body's text ``name``; the task
    as it is now."""
    data = await json_body(request)
    task = await step(cx.enforcer(request), id_param(request, "task id"),
                      field_of(data, name, required=True), cx.actor(request))
    return ok(views.masked(task_dict(task), cx.mask(request)))


@route("POST", "/api/health-tasks/{id}/note", tag="caller-id health", role="reviewer",
       params=(TASK_ID,), body=_text_body("text"))
async def note_task(request: web.Request) -> web.Response:
    """Record a remediation step (the task becomes "working")."""
    return await _worked(request, "text", lambda enforcer, task, text, actor:
                         enforcer.note_health_task(task, text=text, actor=actor))


@route("POST", "/api/health-tasks/{id}/close", tag="caller-id health", role="reviewer",
       params=(TASK_ID,), body=_text_body("resolution"))
async def close_task(request: web.Request) -> web.Response:
    """Close a task with its resolution: the caller ID's caps are whole again."""
    return await _worked(request, "resolution", lambda enforcer, task, text, actor:
                         enforcer.close_health_task(task, resolution=text, actor=actor))
