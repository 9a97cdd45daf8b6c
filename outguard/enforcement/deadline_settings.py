"""The policy's ``[enforcement.complaint_deadlines]``: each regulator channel's response
deadline as a setting, over the built-in figures (``deadlines.CHANNELS``), validated with
the file and line of every problem.

::

    calendars = ["cn-2027.toml"]     # top level of the policy: holiday calendar files

    [enforcement.complaint_deadlines]
    warn_days = 45                   # warn this long before a calendar's last known day

    [enforcement.complaint_deadlines.channels.12321]
    act_days = 10                    # a changed figure says where it comes from:
    basis = "practice"
    cite = "our agreement with the provincial 12321 office, 2026-11"

    [enforcement.complaint_deadlines.channels.cnca]  # a channel of your own
    title = "Provincial communications administration (省通信管理局)"
    act_days = 10
    unit = "working_days"            # working_days | days
    calendar = "cn"                  # the holiday calendar of those working days
    zone = "Asia/Shanghai"
    basis = "practice"
    cite = "the administration's letter of 2026-11-02"
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from outguard.enforcement.deadlines import CALENDAR_WARN_DAYS, CHANNELS, Channel, Deadlines
from rules.errors import PolicyError
from rules.holidays import Calendar, shipped, shipped_names, zone_ok

TOP = "complaint_deadlines"
_CHANNEL_KEYS = ("title", "act_days", "unit", "zone", "calendar", "next_working_day",
                 "forward_days", "forward_basis", "forward_cite", "basis", "cite")
#: changing one of these changes the deadline: the change says where it comes from
_FIGURES = ("act_days", "unit", "calendar", "next_working_day")
_UNITS = {"working_days": True, "days": False}
_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


class Ctx(Protocol):
    def err(self, top: str, message: str, sub: str | None = None,
            key: str | None = None) -> None: ...


def read_deadlines(ctx: Ctx, value: object, calendars: Mapping[str, Calendar],
                   origin: str) -> Deadlines:
    """``[enforcement.complaint_deadlines]`` over the built-in channels; problems go to
    ``ctx`` (the caller raises them all at once)."""
    if not isinstance(value, dict):
        ctx.err(TOP, "must be a table")
        return Deadlines(calendars=calendars)
    for key in sorted(value.keys() - {"warn_days", "channels"}):
        ctx.err(TOP, "unknown key (known: warn_days, channels)", None, key)
    warn = value.get("warn_days", CALENDAR_WARN_DAYS)
    if isinstance(warn, bool) or not isinstance(warn, int) or not 0 <= warn <= 366:
        ctx.err(TOP, "must be a number of days from 0 to 366", None, "warn_days")
        warn = CALENDAR_WARN_DAYS
    channels = dict(CHANNELS)
    raw = value.get("channels", {})
    if not isinstance(raw, dict):
        ctx.err(TOP, "must be a table of channels ([enforcement.complaint_deadlines."
                "channels.12321])", None, "channels")
        raw = {}
    for key, spec in raw.items():
        found = _channel(ctx, str(key), spec, calendars, origin)
        if found is not None:
            channels[found.key] = found
    return Deadlines(channels, calendars, warn)


def _channel(ctx: Ctx, key: str, v: object, calendars: Mapping[str, Calendar],
             origin: str) -> Channel | None:
    sub = f"channels.{key}"

    def err(field: str | None, message: str) -> None:
        ctx.err(TOP, message, sub, field)

    if not _KEY.fullmatch(key):
        err(None, "a channel is named by the complaints' source: lower-case letters, "
            "digits, _ and - (12321, fcc)")
        return None
    if not isinstance(v, dict):
        err(None, "must be a table")
        return None
    n_before = _count(ctx)
    for field in sorted(v.keys() - set(_CHANNEL_KEYS)):
        err(field, f"unknown key (known: {', '.join(_CHANNEL_KEYS)})")
    base = CHANNELS.get(key)
    if base is None:
        for field in ("title", "act_days", "unit", "zone", "basis", "cite"):
            if field not in v:
                err(field, f"a channel of your own needs {field} (title, act_days, unit, "
                    "zone, basis, cite)")
    elif any(f in v for f in _FIGURES) and not ("basis" in v and "cite" in v):
        err("cite", "a changed deadline says where it comes from: give basis (law or "
            "practice) and cite")
    out: dict[str, Any] = {}
    for field in ("title", "cite", "forward_cite"):
        if field in v:
            if not isinstance(v[field], str) or not v[field].strip():
                err(field, "must be a non-empty string")
            else:
                out[field] = v[field].strip()
    for field in ("basis", "forward_basis"):
        if field in v:
            if v[field] not in ("law", "practice"):
                err(field, f"must be law or practice, not {v[field]!r}")
            else:
                out[field] = v[field]
    for field, top in (("act_days", 365), ("forward_days", 60)):
        if field in v:
            days = v[field]
            if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= top:
                err(field, f"must be a whole number of days from 1 to {top}")
            else:
                out[field] = days
    if "unit" in v:
        if v["unit"] not in _UNITS:
            err("unit", "must be working_days or days")
        else:
            out["working_days"] = _UNITS[v["unit"]]
    if "next_working_day" in v:
        if not isinstance(v["next_working_day"], bool):
            err("next_working_day", "must be true or false")
        else:
            out["next_working_day"] = v["next_working_day"]
    if "zone" in v:
        if not isinstance(v["zone"], str) or not zone_ok(v["zone"]):
            err("zone", f"unknown time zone {v['zone']!r}")
        else:
            out["zone"] = v["zone"]
    if "calendar" in v:
        name = v["calendar"]
        if not isinstance(name, str) or (name not in calendars and not _shipped(name)):
            known = sorted({*shipped_names(), *calendars})
            err("calendar", f"no calendar {name!r} (known: {', '.join(known)})")
        else:
            out["calendar"] = name
    if "forward_days" in out and base is None and not {"forward_basis", "forward_cite"} <= v.keys():
        err("forward_days", "a forwarding time says where it comes from: give "
            "forward_basis and forward_cite")
    if _count(ctx) > n_before:
        return None
    if base is None:
        working = out.pop("working_days")
        channel = Channel(key, out.pop("title"), out.pop("act_days"), working, out.pop("zone"),
                          out.pop("basis"), out.pop("cite"), origin=origin, **out)
        if channel.working_days and channel.calendar is None:
            err("calendar", "working days are counted on a holiday calendar: name one "
                f"({', '.join(shipped_names())})")
            return None
        return channel
    return replace(base, origin=origin, **out)


def _count(ctx: Ctx) -> int:
    issues = getattr(ctx, "issues", None)
    return len(issues) if isinstance(issues, list) else 0


def _shipped(name: str) -> bool:
    try:
        shipped(name)
    except PolicyError:
        return False
    return True
