"""Validation of raw policy tables into typed objects, collecting every issue."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from rules.errors import PolicyError, PolicyIssue
from rules.holidays import WINDOW_YEARS, Calendar, window_calendar
from rules.holidays import zone_ok as _zone_ok
from rules.model import LineType, ListKind, Purpose, RuleMode, Scope
from rules.policy_types import (
    BLOCKING_LISTS,
    DEFAULT_CAUSES,
    EXEMPTING_LISTS,
    ListSpec,
    Policy,
    RuleKind,
    RuleSpec,
    Span,
    WindowSpec,
)


@dataclass(frozen=True, slots=True)
class RawItem:
    value: Any
    file: str
    line: int
    key: str  # dotted location, e.g. "rules[2]"
    key_line: Callable[[str], int] | None


class _Ctx:
    def __init__(self, issues: list[PolicyIssue],
                 calendars: Mapping[str, Calendar] | None = None) -> None:
        self.issues = issues
        self.calendars = calendars or {}

    def err(self, item: RawItem, key: str | None, message: str) -> None:
        line = item.key_line(key) if (key and item.key_line) else item.line
        full = f"{item.key}.{key}" if key else item.key
        self.issues.append(PolicyIssue(item.file, line or item.line, full, message))


_COMMON = {
    "id", "kind", "mode", "cause", "announcement", "message", "purposes", "regions", "provinces", "enabled",
}
_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_DAY_GROUPS = {"daily": range(7), "weekdays": range(5), "weekend": range(5, 7)}
_SPAN = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")
_PREFIX = re.compile(r"\+?[0-9]{1,15}")
_WINDOWS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
CAP_SCOPES = (
    "account",
    "caller_id",
    "tenant",
    "destination",
    "distinct_callees",
    "concurrent_account",
    "concurrent_tenant",
)


def validate(
    top: Mapping[str, RawItem],
    rules: list[RawItem],
    lists: Mapping[str, RawItem],
    windows: Mapping[str, RawItem],
    causes: Mapping[str, RawItem],
    issues: list[PolicyIssue],
    calendars: Mapping[str, Calendar] | None = None,
) -> Policy | None:
    """``calendars``: the policy's own holiday calendars (its ``calendars`` files), by
    name, over the shipped ones."""
    ctx = _Ctx(issues, calendars)
    region, zone = "CN", "Asia/Shanghai"
    area: str | None = None
    for key, item in top.items():
        if key == "default_region" and isinstance(item.value, str) and re.fullmatch(r"[A-Z]{2}", item.value):
            region = item.value
        elif key == "home_area_code" and isinstance(item.value, str) and re.fullmatch(r"0?[1-9]\d{1,2}", item.value):
            area = item.value.removeprefix("0")
        elif key == "timezone" and isinstance(item.value, str) and _zone_ok(item.value):
            zone = item.value
        else:
            ctx.err(item, None, f"unknown key or bad value {item.value!r}")
    for key, item in causes.items():
        if key not in DEFAULT_CAUSES:
            ctx.err(item, None, f"unknown reason code {key!r} (known: {', '.join(sorted(DEFAULT_CAUSES))})")
    cause_map = {k: v.value for k, v in causes.items() if _cause_ok(ctx, v, None, v.value)}
    list_specs = {n: s for n, i in lists.items() if (s := _list(ctx, n, i)) is not None}
    win_specs = {n: w for n, i in windows.items() if (w := _window(ctx, n, i)) is not None}
    specs: list[RuleSpec] = []
    seen: set[str] = set()
    for item in rules:
        spec = _rule(ctx, item, list_specs, win_specs)
        if spec is not None:
            if spec.id in seen:
                ctx.err(item, "id", f"duplicate rule id {spec.id!r}")
            seen.add(spec.id)
            specs.append(spec)
    status_ids = _party_status_always(ctx, rules, specs)
    for name, ls in list_specs.items():
        for rid in ls.exempts:
            if rid not in seen:
                ctx.err(lists[name], "exempts", f"no rule with id {rid!r}")
            elif rid in status_ids:
                ctx.err(lists[name], "exempts", f"rule {rid!r} is a party_status rule: no list may"
                        " exempt a number from suspensions (a suspended party stays suspended)")
    if area is not None and "home_area_code" in top:
        _check_area_code(ctx, top["home_area_code"], region, area)
    if issues:
        return None
    if not status_ids:
        specs.append(_builtin_party_status({s.id for s in specs}))
    return Policy(tuple(specs), list_specs, win_specs, cause_map, region, zone,
                  home_area_code=area)


def _check_area_code(ctx: _Ctx, item: RawItem, region: str, area: str) -> None:
    """A home area code must complete a local number into a valid one of the region."""
    from rules.numbers import NumberError, normalise

    samples = {"CN": ("62345678", "2345678"), "US": ("2345678",)}.get(region)
    if samples is None:
        ctx.err(item, None, f"home_area_code is supported for CN and US numbers, not {region}")
        return
    import phonenumbers as pn

    for sample in samples:
        try:
            full = pn.parse(normalise(sample, region, area))
        except NumberError:
            continue
        if pn.length_of_geographical_area_code(full) == len(area):
            return
    ctx.err(item, None, f"{item.value!r} is not an area code of {region}")


ALL_PARTIES = ("tenant", "account", "caller_id")
BUILTIN_PARTY_STATUS = "party_status"


def _party_status_always(ctx: _Ctx, rules: list[RawItem], specs: list[RuleSpec]) -> set[str]:
    """Party status holds under every policy: a suspended, disabled or unverified tenant,
    account or caller ID never calls, whatever the policy includes.

    A policy without a party_status rule gets the built-in one (every party, enforce, no
    filter). A party_status rule that would let a suspended party call (shadow mode, a
    purpose/region/province filter, or not every party) is a validation error, so such a
    policy cannot be loaded. Returns the ids of the policy's own party_status rules.
    """
    ids: set[str] = set()
    items = {rid: r for r in rules
             if isinstance(r.value, dict) and isinstance(rid := r.value.get("id"), str)}
    for spec in specs:
        if spec.kind is not RuleKind.PARTY_STATUS:
            continue
        ids.add(spec.id)
        item = items.get(spec.id, rules[0])
        if spec.mode is not RuleMode.ENFORCE:
            ctx.err(item, "mode", "party_status must be enforced: in shadow mode a suspended or"
                    " disabled party keeps calling (remove the rule to get the built-in one)")
        for key in ("purposes", "regions", "provinces"):
            if getattr(spec, key):
                ctx.err(item, key, f"party_status cannot be limited by {key}: a suspension must"
                        " stop every call of the party")
        missing = [p for p in ALL_PARTIES if p not in spec.params.get("parties", ALL_PARTIES)]
        if missing:
            ctx.err(item, "parties", f"party_status must cover tenant, account and caller_id:"
                    f" a suspended {' or '.join(missing)} would keep calling")
    return ids


def _builtin_party_status(taken: set[str]) -> RuleSpec:
    rid = BUILTIN_PARTY_STATUS if BUILTIN_PARTY_STATUS not in taken else "party_status.builtin"
    return RuleSpec(
        id=rid, kind=RuleKind.PARTY_STATUS, params={"parties": ALL_PARTIES, "unknown": "allow"},
        source="built-in (rules/policy_validate.py): party status applies under every policy",
    )



def _cause_ok(ctx: _Ctx, item: RawItem, key: str | None, value: object) -> bool:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 127:
        return True
    ctx.err(item, key, f"Q.850 cause must be an integer 1-127, not {value!r}")
    return False


def _enum(ctx: _Ctx, item: RawItem, key: str, enum_t: Any, value: object) -> Any:
    try:
        return enum_t(value)
    except ValueError:
        ok = ", ".join(e.value for e in enum_t)
        ctx.err(item, key, f"{value!r} is not one of: {ok}")
        return None


def _strs(ctx: _Ctx, item: RawItem, key: str, value: object) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    ctx.err(item, key, "must be a list of strings")
    return None


def _list(ctx: _Ctx, name: str, item: RawItem) -> ListSpec | None:
    v = item.value
    if not isinstance(v, dict):
        ctx.err(item, None, "must be a table")
        return None
    n = len(ctx.issues)
    kind = _enum(ctx, item, "kind", ListKind, v.get("kind"))
    scope = _enum(ctx, item, "scope", Scope, v.get("scope", "global"))
    key = v.get("scope_key")
    if scope in (Scope.TENANT, Scope.CAMPAIGN) and not isinstance(key, str):
        ctx.err(item, "scope_key", f"a {scope.value} list needs scope_key (a string)")
    age = v.get("max_age_days")
    if age is not None and (not isinstance(age, int) or isinstance(age, bool) or age < 1):
        ctx.err(item, "max_age_days", "must be a positive integer")
    exempts = _strs(ctx, item, "exempts", v.get("exempts", [])) or []
    if exempts and kind not in EXEMPTING_LISTS:
        ctx.err(item, "exempts", "only allow and consent lists exempt numbers from rules")
    for k in v.keys() - {"kind", "scope", "scope_key", "max_age_days", "exempts"}:
        ctx.err(item, k, "unknown key")
    if len(ctx.issues) > n:
        return None
    return ListSpec(name, kind, scope, key, age, tuple(exempts), f"{item.file}:{item.line}")


def _spans(ctx: _Ctx, item: RawItem, key: str, value: object) -> tuple[Span, ...] | None:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        ctx.err(item, key, 'hours must be "HH:MM-HH:MM" or a list of them')
        return None
    spans: list[Span] = []
    for t in texts:
        m = _SPAN.fullmatch(t.strip())
        if m is None:
            ctx.err(item, key, f'bad span {t!r} (want "HH:MM-HH:MM")')
            return None
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        a, b = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or b > 1440 or a >= b:
            ctx.err(item, key, f"bad span {t!r} (start must be before end, within 00:00-24:00)")
            return None
        spans.append((a, b))
    return tuple(sorted(spans))


def _window(ctx: _Ctx, name: str, item: RawItem) -> WindowSpec | None:
    v = item.value
    if not isinstance(v, dict) or not isinstance(v.get("hours"), dict):
        ctx.err(item, "hours", "a window needs an hours table, e.g. { daily = \"09:00-21:00\" }")
        return None
    n = len(ctx.issues)
    hours: dict[int, tuple[Span, ...]] = {}
    groups = sorted(v["hours"].items(), key=lambda kv: kv[0] in _DAYS)  # groups first
    for day, spec in groups:
        spans = _spans(ctx, item, "hours", spec)
        days = _DAY_GROUPS.get(day) or ([_DAYS[day]] if day in _DAYS else None)
        if days is None:
            ctx.err(item, "hours", f"unknown day {day!r} (mon..sun, daily, weekdays, weekend)")
        elif spans is not None:
            hours.update({d: spans for d in days})
    holidays = _dates(ctx, item, "holidays", v.get("holidays", []))
    workdays = _dates(ctx, item, "workdays", v.get("workdays", []))
    names: dict[date, str] = {}
    cal_name = v.get("calendar")
    if cal_name is not None:
        try:
            cal = window_calendar(cal_name, ctx.calendars)
        except PolicyError as exc:
            ctx.err(item, "calendar", "; ".join(i.message for i in exc.issues))
        else:
            names, made_up = cal.dates(*WINDOW_YEARS)
            holidays |= names.keys() - made_up - workdays
            workdays |= made_up - holidays
    for d in sorted(holidays & workdays):
        ctx.err(item, "workdays", f"{d} is both a holiday and a make-up working day")
    hh = _spans(ctx, item, "holiday_hours", v["holiday_hours"]) if "holiday_hours" in v else ()
    wh = _spans(ctx, item, "workday_hours", v["workday_hours"]) if "workday_hours" in v else None
    if wh is None:
        wh = hours.get(0, ())
        if workdays and not wh:
            ctx.err(item, "workday_hours", "make-up working days need workday_hours (Monday"
                    " has no hours to copy)")
    zone = v.get("zone")
    if zone is not None and not (isinstance(zone, str) and _zone_ok(zone)):
        ctx.err(item, "zone", f"unknown time zone {zone!r}")
    callee = v.get("callee_zone", True)
    if not isinstance(callee, bool):
        ctx.err(item, "callee_zone", "must be true or false")
    for k in v.keys() - {"hours", "holidays", "holiday_hours", "zone", "callee_zone", "workdays",
                         "workday_hours", "calendar"}:
        ctx.err(item, k, "unknown key")
    if len(ctx.issues) > n:
        return None
    return WindowSpec(name, hours, frozenset(holidays), hh or (), frozenset(workdays), wh or (),
                      zone, callee, f"{item.file}:{item.line}",
                      cal_name if isinstance(cal_name, str) else None, names)


def _dates(ctx: _Ctx, item: RawItem, key: str, values: object) -> set[date]:
    out: set[date] = set()
    if not isinstance(values, list):
        ctx.err(item, key, f"must be a list of dates, e.g. [2026-10-01], not {values!r}")
        return out
    for h in values:
        try:
            out.add(h if isinstance(h, date) else date.fromisoformat(str(h)))
        except ValueError:
            ctx.err(item, key, f"bad date {h!r}")
    return out


def _rule(
    ctx: _Ctx, item: RawItem, lists: Mapping[str, ListSpec], windows: Mapping[str, WindowSpec]
) -> RuleSpec | None:
    v = item.value
    n = len(ctx.issues)
    rid = v.get("id")
    if not isinstance(rid, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", rid):
        ctx.err(item, "id", f"rule id must be 1-64 letters, digits, _ . - (got {rid!r})")
    kind = _enum(ctx, item, "kind", RuleKind, v.get("kind"))
    mode = _enum(ctx, item, "mode", RuleMode, v.get("mode", "enforce"))
    cause = v.get("cause")
    if cause is not None:
        _cause_ok(ctx, item, "cause", cause)
    for key in ("announcement", "message"):
        if v.get(key) is not None and not isinstance(v[key], str):
            ctx.err(item, key, "must be a string")
    if isinstance(v.get("message"), str):
        try:
            list(string.Formatter().parse(v["message"]))
        except ValueError as exc:
            ctx.err(item, "message", f"bad template ({exc}); use {{detail}}, {{number}}, {{rule}}, {{reason}}")
    purposes = [_enum(ctx, item, "purposes", Purpose, p) for p in _strs(ctx, item, "purposes", v.get("purposes", [])) or []]
    regions = _strs(ctx, item, "regions", v.get("regions", [])) or []
    provinces = _strs(ctx, item, "provinces", v.get("provinces", [])) or []
    params = {k: x for k, x in v.items() if k not in _COMMON}
    if kind is not None:
        params = PARAMS[kind](ctx, item, params, lists, windows)
    if len(ctx.issues) > n:
        return None
    return RuleSpec(
        id=rid,
        kind=kind,
        mode=mode,
        cause=cause,
        announcement=v.get("announcement"),
        message=v.get("message"),
        purposes=frozenset(purposes),
        regions=frozenset(regions),
        provinces=frozenset(provinces),
        params=params,
        source=f"{item.file}:{item.line}",
    )


_Params = dict[str, Any]
_Lists = Mapping[str, ListSpec]
_Wins = Mapping[str, WindowSpec]


def _only(ctx: _Ctx, item: RawItem, params: _Params, allowed: set[str]) -> None:
    for k in params.keys() - allowed:
        ctx.err(item, k, f"unknown parameter (known: {', '.join(sorted(allowed)) or 'none'})")


def _bools(ctx: _Ctx, item: RawItem, params: _Params, defaults: dict[str, bool]) -> _Params:
    out: _Params = {}
    for k, d in defaults.items():
        val = params.get(k, d)
        if not isinstance(val, bool):
            ctx.err(item, k, "must be true or false")
        out[k] = val
    return out


def _p_party(ctx: _Ctx, item: RawItem, p: _Params, _l: _Lists, _w: _Wins) -> _Params:
    _only(ctx, item, p, {"parties", "unknown"})
    parties = _strs(ctx, item, "parties", p.get("parties", ["tenant", "account", "caller_id"])) or []
    for x in parties:
        if x not in ("tenant", "account", "caller_id"):
            ctx.err(item, "parties", f"{x!r} is not tenant, account or caller_id")
    unknown = p.get("unknown", "allow")
    if unknown not in ("allow", "block"):
        ctx.err(item, "unknown", 'must be "allow" or "block"')
    return {"parties": tuple(parties), "unknown": unknown}


def _p_caller(ctx: _Ctx, item: RawItem, p: _Params, _l: _Lists, _w: _Wins) -> _Params:
    flags = {"require_owned": True, "require_verified": True, "block_invalid": True,
             "block_same_as_destination": True, "allow_missing": False,
             "allow_short_codes": False}
    _only(ctx, item, p, {"forbidden_prefixes", "domestic_regions", *flags})
    out = _bools(ctx, item, p, flags)
    domestic = _strs(ctx, item, "domestic_regions", p.get("domestic_regions", [])) or []
    for x in domestic:
        if not re.fullmatch(r"[A-Z]{2}", x):
            ctx.err(item, "domestic_regions", f"{x!r} is not an ISO region code like \"CN\"")
    out["domestic_regions"] = frozenset(domestic)
    prefixes = _strs(ctx, item, "forbidden_prefixes", p.get("forbidden_prefixes", [])) or []
    for x in prefixes:
        if not _PREFIX.fullmatch(x):
            ctx.err(item, "forbidden_prefixes", f"{x!r} is not a digit prefix like \"86400\"")
    out["forbidden_prefixes"] = tuple(x.lstrip("+") for x in prefixes)
    return out


def _p_lists(ctx: _Ctx, item: RawItem, p: _Params, lists: _Lists, _w: _Wins) -> _Params:
    return _lists_of(ctx, item, p, lists, BLOCKING_LISTS, "a do-not-call, blacklist, complaint, register or litigator list")


def _p_fresh(ctx: _Ctx, item: RawItem, p: _Params, lists: _Lists, _w: _Wins) -> _Params:
    return _lists_of(ctx, item, p, lists, frozenset({ListKind.REGISTER}), "a register")


def _lists_of(
    ctx: _Ctx, item: RawItem, p: _Params, lists: _Lists, kinds: frozenset[ListKind], want: str
) -> _Params:
    _only(ctx, item, p, {"lists", "max_age_days"})
    names = _strs(ctx, item, "lists", p.get("lists", [])) or []
    for name in names:
        if name not in lists:
            ctx.err(item, "lists", f"no list named {name!r} in [lists]")
        elif lists[name].kind not in kinds:
            ctx.err(item, "lists", f"list {name!r} is a {lists[name].kind.value} list, not {want}")
    age = p.get("max_age_days", 31)
    if not isinstance(age, int) or isinstance(age, bool) or age < 1:
        ctx.err(item, "max_age_days", "must be a positive integer")
    return {"lists": tuple(names), "max_age_days": age}


def _p_prefix(ctx: _Ctx, item: RawItem, p: _Params, _l: _Lists, _w: _Wins) -> _Params:
    _only(ctx, item, p, {"allow", "deny"})
    out: _Params = {}
    for key in ("allow", "deny"):
        vals = _strs(ctx, item, key, p.get(key, [])) or []
        bad = [x for x in vals if not _PREFIX.fullmatch(x)]
        if bad:
            ctx.err(item, key, f"not digit prefixes: {bad[:5]}")
        out[key] = tuple(x.lstrip("+") for x in vals)
    return out


def _p_region(ctx: _Ctx, item: RawItem, p: _Params, _l: _Lists, _w: _Wins) -> _Params:
    keys = ("allow_regions", "deny_regions", "allow_provinces", "deny_provinces")
    _only(ctx, item, p, set(keys))
    return {k: frozenset(_strs(ctx, item, k, p.get(k, [])) or []) for k in keys}


def _p_line(ctx: _Ctx, item: RawItem, p: _Params, _l: _Lists, _w: _Wins) -> _Params:
    _only(ctx, item, p, {"allow", "deny"})
    out: _Params = {}
    for key in ("allow", "deny"):
        vals = [_enum(ctx, item, key, LineType, x) for x in _strs(ctx, item, key, p.get(key, [])) or []]
        out[key] = frozenset(x for x in vals if x is not None)
    return out


def _p_time(ctx: _Ctx, item: RawItem, p: _Params, _l: _Lists, windows: _Wins) -> _Params:
    _only(ctx, item, p, {"window"})
    name = p.get("window")
    if not isinstance(name, str) or name not in windows:
        ctx.err(item, "window", f"no window named {name!r} in [windows]")
    return {"window": name}


def _p_cap(ctx: _Ctx, item: RawItem, p: _Params, _l: _Lists, _w: _Wins) -> _Params:
    _only(ctx, item, p, {"scope", "limit", "window", "when_unavailable"})
    scope = p.get("scope")
    if scope not in CAP_SCOPES:
        ctx.err(item, "scope", f"{scope!r} is not one of: {', '.join(CAP_SCOPES)}")
    limit = p.get("limit")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        ctx.err(item, "limit", "must be a non-negative integer")
    window = p.get("window", "day")
    secs = _WINDOWS.get(window) if isinstance(window, str) else window
    if not isinstance(secs, int) or isinstance(secs, bool) or not 1 <= secs <= 7 * 86400:
        ctx.err(item, "window", "must be minute, hour, day, week or seconds up to a week")
    fail = p.get("when_unavailable", "block")
    if fail not in ("block", "allow"):
        ctx.err(item, "when_unavailable",
                f"{fail!r} is not block (fail closed) or allow (fail open)")
    return {"scope": scope, "limit": limit, "window_s": secs, "window": window,
            "when_unavailable": fail}


PARAMS: dict[RuleKind, Callable[[_Ctx, RawItem, _Params, _Lists, _Wins], _Params]] = {
    RuleKind.PARTY_STATUS: _p_party,
    RuleKind.CALLER_ID: _p_caller,
    RuleKind.LISTS: _p_lists,
    RuleKind.REGISTER_FRESHNESS: _p_fresh,
    RuleKind.PREFIX: _p_prefix,
    RuleKind.REGION: _p_region,
    RuleKind.LINE_TYPE: _p_line,
    RuleKind.TIME_WINDOW: _p_time,
    RuleKind.CAP: _p_cap,
}
