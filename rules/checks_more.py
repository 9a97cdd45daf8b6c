"""Rule kinds 4-6: segment / region / line type, time windows, caps.

Parameters per kind:

* ``prefix``: ``allow``, ``deny``: digit prefixes with country code ("86170",
  "+8616"); the longest matching prefix decides (allow and deny at any depth). Extra
  prefixes may come from the store as ``StoreData.extra["prefixes"][rule_id]``: an
  iterable of ``(prefix, "allow" | "deny")``. Reason prefix_denied.
* ``region``: ``allow_regions`` / ``deny_regions`` (ISO codes), ``allow_provinces`` /
  ``deny_provinces`` (names as classify gives them, 广东省). An allow set blocks numbers
  whose region/province is unknown. Reason region_denied.
* ``line_type``: ``allow`` / ``deny`` (mobile, fixed, premium, short_code, ...).
  Reason line_type_denied.
* ``time_window``: ``window`` (a [windows.NAME] table). The call must be inside the
  window in every candidate zone of the callee (all of a multi-zone number's zones);
  when the number has no zone, or the window says callee_zone = false, the window's
  ``zone`` or else the policy ``timezone``. Holidays are closed (or ``holiday_hours``);
  make-up working days (``workdays``, China's 调休) open with ``workday_hours`` (default:
  Monday's hours) whatever their weekday. Reasons quiet_hours, holiday.
* ``cap``: ``scope`` (account, caller_id, tenant: calls in the window; destination:
  calls to this number by any account of the tenant; distinct_callees: per account per
  day; concurrent_account, concurrent_tenant: calls in progress), ``limit`` (blocks when
  the count has reached it), ``window`` (minute, hour, day, week or seconds). Reasons
  rate_cap, destination_cap, distinct_callees_cap, concurrency_cap. distinct_callees
  counts whoever was called today, so at the limit a redial of a number already called
  today is blocked too (conservative; the Counters protocol cannot tell). A caller ID
  with an open caller-ID health task (its ``Party.cap_factor`` below 1) has every
  caller_id cap multiplied by that factor (at least 1 call): over the reduced limit but
  under the rule's own the reason is caller_id_throttled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from rules.checks_base import Check, Ctx, Hit, Parts
from rules.model import PartyKind
from rules.policy_types import RuleKind, RuleSpec, Span, WindowSpec
from rules.tables import PrefixTable

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class PrefixCheck(Check):
    kind = RuleKind.PREFIX
    __slots__ = ("table",)

    def __init__(self, spec: RuleSpec, parts: Parts, extra: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(spec)
        allow, deny = list(spec.params["allow"]), list(spec.params["deny"])
        for row in extra:
            try:
                prefix, effect = row
            except (TypeError, ValueError):
                parts.warn(f"rule {spec.id}: prefix row {row!r} is not (prefix, effect); skipped")
                continue
            p = str(prefix).lstrip("+")
            if not p.isdigit() or not p.isascii() or effect not in ("allow", "deny"):
                parts.warn(f"rule {spec.id}: prefix row {row!r} is invalid; skipped")
                continue
            (allow if effect == "allow" else deny).append(p)
        self.table = PrefixTable(allow, deny)
        for p in self.table.conflicts:
            parts.warn(f"rule {spec.id}: prefix {p} both allowed and denied; deny kept")

    def evaluate(self, ctx: Ctx) -> Hit | None:
        m = self.table.match(ctx.dest_digits)
        if m is None or m[1]:
            return None
        return Hit("prefix_denied", f"{ctx.dest} is in the denied segment +{m[0]}", {"prefix": m[0]})

    def figures(self, ctx: Ctx) -> dict[str, Any]:
        m = self.table.match(ctx.dest_digits)
        return {"prefixes": len(self.table), "match": None if m is None else {"prefix": m[0], "allowed": m[1]}}


class RegionCheck(Check):
    kind = RuleKind.REGION
    __slots__ = ("_p",)

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self._p: Mapping[str, frozenset[str]] = spec.params

    def evaluate(self, ctx: Ctx) -> Hit | None:
        info, p = ctx.dest_info, self._p
        for what, value in (("region", info.region), ("province", info.province)):
            allow, deny = p[f"allow_{what}s"], p[f"deny_{what}s"]
            if (allow and value not in allow) or (value is not None and value in deny):
                shown = value or "unknown"
                return Hit("region_denied", f"{ctx.dest}: {what} {shown} is not allowed", {what: value})
        return None

    def figures(self, ctx: Ctx) -> dict[str, Any]:
        return {"region": ctx.dest_info.region, "province": ctx.dest_info.province, "city": ctx.dest_info.city}


class LineTypeCheck(Check):
    kind = RuleKind.LINE_TYPE
    __slots__ = ("_allow", "_deny")

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self._allow = spec.params["allow"]
        self._deny = spec.params["deny"]

    def evaluate(self, ctx: Ctx) -> Hit | None:
        lt = ctx.dest_info.line_type
        if lt in self._deny or (self._allow and lt not in self._allow):
            return Hit("line_type_denied", f"{ctx.dest} is a {lt.value} number, not allowed here")
        return None

    def figures(self, ctx: Ctx) -> dict[str, Any]:
        return {"line_type": ctx.dest_info.line_type.value}


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _fmt(spans: tuple[Span, ...]) -> str:
    if not spans:
        return "closed"
    return ", ".join(f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in spans)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_OFFSET_BUCKET_S = 900  # UTC offsets change on quarter-hour instants in modern tzdata


class TimeWindowCheck(Check):
    """Allowed hours; the hot path works on epoch seconds plus a memoised UTC offset."""

    kind = RuleKind.TIME_WINDOW
    __slots__ = ("_w", "_fallback", "_by_weekday", "_holiday_days", "_workday_days", "_memo")

    def __init__(self, spec: RuleSpec, parts: Parts) -> None:
        super().__init__(spec)
        self._w: WindowSpec = parts.policy.windows[spec.params["window"]]
        self._fallback = (self._w.zone or parts.policy.timezone,)
        self._by_weekday = tuple(self._w.hours.get(d, ()) for d in range(7))
        self._holiday_days = frozenset(d.toordinal() - _EPOCH_ORDINAL for d in self._w.holidays)
        self._workday_days = frozenset(d.toordinal() - _EPOCH_ORDINAL for d in self._w.workdays)
        self._memo: dict[str, tuple[int, int]] = {}  # zone -> (offset bucket, offset s)

    def _offset(self, ctx: Ctx, zone: str) -> int:
        """UTC offset of ``zone`` at ctx.now in seconds, memoised per quarter hour."""
        bucket = int(ctx.ts // _OFFSET_BUCKET_S)
        memo = self._memo.get(zone)
        if memo is not None and memo[0] == bucket:
            return memo[1]
        off = ctx.now.astimezone(_zone(zone)).utcoffset()
        secs = int(off.total_seconds()) if off is not None else 0
        self._memo[zone] = (bucket, secs)
        return secs

    def _open(self, ctx: Ctx, zone: str) -> bool:
        local = int(ctx.ts) + self._offset(ctx, zone)
        day = local // 86400
        if self._holiday_days and day in self._holiday_days:
            spans = self._w.holiday_hours
        elif self._workday_days and day in self._workday_days:
            spans = self._w.workday_hours
        else:
            spans = self._by_weekday[(day + 3) % 7]  # 1970-01-01 was a Thursday
        minute = (local % 86400) // 60
        for a, b in spans:
            if a <= minute < b:
                return True
        return False

    def zones(self, ctx: Ctx) -> tuple[str, ...]:
        if self._w.callee_zone and ctx.dest_info.timezones:
            return ctx.dest_info.timezones
        return self._fallback

    def _local(self, now: datetime, zone: str) -> tuple[datetime, tuple[Span, ...], bool]:
        local = now.astimezone(_zone(zone))
        holiday = local.date() in self._w.holidays
        if holiday:
            spans = self._w.holiday_hours
        elif local.date() in self._w.workdays:
            spans = self._w.workday_hours
        else:
            spans = self._w.hours.get(local.weekday(), ())
        return local, spans, holiday

    def evaluate(self, ctx: Ctx) -> Hit | None:
        for zone in self.zones(ctx):
            if self._open(ctx, zone):
                continue
            local, spans, holiday = self._local(ctx.now, zone)
            minute = local.hour * 60 + local.minute
            if not any(a <= minute < b for a, b in spans):
                when = f"{local:%H:%M} {_DAY_NAMES[local.weekday()]} {local:%Y-%m-%d} in {zone}"
                named = self._w.holiday_names.get(local.date()) if holiday else None
                what = (f"{when} is {named}, a holiday of calendar {self._w.calendar!r}: it is"
                        if named else f"{when} is")
                return Hit(
                    "holiday" if holiday else "quiet_hours",
                    f"{what} outside the calling window {self._w.name!r} ({_fmt(spans)})",
                    {"zone": zone, "local": local.isoformat(timespec="minutes")},
                )
        return None

    def figures(self, ctx: Ctx) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for zone in self.zones(ctx):
            local, spans, holiday = self._local(ctx.now, zone)
            out[zone] = {"local": local.isoformat(timespec="minutes"), "open": _fmt(spans), "holiday": holiday}
        return out


class CapCheck(Check):
    """Base of the cap kinds; ``make_cap`` picks the subclass for the scope."""

    kind = RuleKind.CAP
    reason = "rate_cap"
    __slots__ = ("_scope", "_limit", "_window_s")

    def __init__(self, spec: RuleSpec) -> None:
        super().__init__(spec)
        self._scope: str = spec.params["scope"]
        self._limit: int = spec.params["limit"]
        self._window_s: int = spec.params["window_s"]

    def count(self, ctx: Ctx) -> tuple[int, str]:
        """(current count, the key it was counted for)."""
        raise NotImplementedError

    def evaluate(self, ctx: Ctx) -> Hit | None:
        n, key = self.count(ctx)
        return None if n < self._limit else self.hit(n, key)

    def limit_for(self, key: str) -> int:
        """The limit that applies to ``key`` (a throttled caller ID's is lower)."""
        return self._limit

    def hit(self, n: int, key: str) -> Hit:
        """The hit of this cap at count ``n`` for ``key``."""
        span = "in progress" if self.reason == "concurrency_cap" else f"in {self._window_text()}"
        return Hit(
            self.reason,
            f"{self._scope.replace('_', ' ')} {key}: {n} calls {span} (limit {self._limit})",
            {"count": n, "limit": self._limit},
        )

    def _window_text(self) -> str:
        if self._scope == "distinct_callees":
            return "today (distinct numbers)"
        names = {60: "the last minute", 3600: "the last hour", 86400: "the last 24 hours", 604800: "the last 7 days"}
        return names.get(self._window_s, f"the last {self._window_s} s")

    def figures(self, ctx: Ctx) -> dict[str, Any]:
        n, key = self.count(ctx)
        return {"scope": self._scope, "key": key, "count": n, "limit": self._limit, "window_s": self._window_s}


class _AccountRate(CapCheck):
    __slots__ = ()

    def count(self, ctx: Ctx) -> tuple[int, str]:
        key = ctx.attempt.account
        return ctx.counters.attempts("account", key, self._window_s, ctx.ts), key

    def evaluate(self, ctx: Ctx) -> Hit | None:  # inlined: the hot path runs several caps
        n = ctx.counters.attempts("account", ctx.attempt.account, self._window_s, ctx.ts)
        return None if n < self._limit else self.hit(n, ctx.attempt.account)


class _TenantRate(CapCheck):
    __slots__ = ()

    def count(self, ctx: Ctx) -> tuple[int, str]:
        key = ctx.attempt.tenant
        return ctx.counters.attempts("tenant", key, self._window_s, ctx.ts), key


def throttled_limit(limit: int, factor: float) -> int:
    """A cap's limit while its caller ID is throttled: at least 1 (a throttle slows a
    number down; a suspension is what stops it)."""
    return max(1, int(limit * factor))


class _CallerRate(CapCheck):
    __slots__ = ("_throttled",)

    def __init__(self, spec: RuleSpec, parts: Parts | None = None) -> None:
        super().__init__(spec)
        #: caller ID -> (reduced limit, health task) for the throttled ones
        self._throttled: dict[str, tuple[int, int | None]] = {}
        for (kind, key), party in (parts.parties.items() if parts is not None else ()):
            if kind is PartyKind.CALLER_ID and party.cap_factor < 1.0:
                self._throttled[key] = (throttled_limit(self._limit, party.cap_factor),
                                        party.throttle_task)

    def count(self, ctx: Ctx) -> tuple[int, str]:
        key = ctx.caller or ctx.attempt.caller_id
        return ctx.counters.attempts("caller_id", key, self._window_s, ctx.ts), key

    def evaluate(self, ctx: Ctx) -> Hit | None:
        key = ctx.caller or ctx.attempt.caller_id
        n = ctx.counters.attempts("caller_id", key, self._window_s, ctx.ts)
        return None if n < self.limit_for(key) else self.hit(n, key)

    def limit_for(self, key: str) -> int:
        """The cap's limit, reduced while ``key`` has a caller-ID health task open."""
        throttle = self._throttled.get(key) if self._throttled else None
        return self._limit if throttle is None else throttle[0]

    def hit(self, n: int, key: str) -> Hit:
        """Over the rule's own limit: the cap's hit; over only the reduced limit of a
        throttled caller ID: caller_id_throttled."""
        throttle = self._throttled.get(key) if self._throttled else None
        if throttle is None or n >= self._limit:
            return super().hit(n, key)
        limit, task = throttle
        return Hit(
            "caller_id_throttled",
            f"caller ID {key}: {n} calls in {self._window_text()} (limit {limit}: the cap of "
            f"{self._limit} reduced while caller-ID health task {task} is open)",
            {"count": n, "limit": limit, "cap": self._limit, "health_task": task},
        )

    def figures(self, ctx: Ctx) -> dict[str, Any]:
        out = super().figures(ctx)
        throttle = self._throttled.get(out["key"])
        if throttle is not None:
            out.update(limit=throttle[0], cap=self._limit, health_task=throttle[1])
        return out


class _DestinationRate(CapCheck):
    reason = "destination_cap"
    __slots__ = ()

    def count(self, ctx: Ctx) -> tuple[int, str]:
        return ctx.counters.destination_attempts(ctx.attempt.tenant, ctx.dest, self._window_s, ctx.ts), ctx.dest


class _DistinctCallees(CapCheck):
    reason = "distinct_callees_cap"
    __slots__ = ()

    def count(self, ctx: Ctx) -> tuple[int, str]:
        return ctx.counters.distinct_callees(ctx.attempt.account, ctx.ts), ctx.attempt.account


class _Concurrent(CapCheck):
    reason = "concurrency_cap"
    __slots__ = ()

    def count(self, ctx: Ctx) -> tuple[int, str]:
        if self._scope == "concurrent_account":
            return ctx.counters.concurrent("account", ctx.attempt.account), ctx.attempt.account
        return ctx.counters.concurrent("tenant", ctx.attempt.tenant), ctx.attempt.tenant


_CAPS: dict[str, type[CapCheck]] = {
    "account": _AccountRate,
    "tenant": _TenantRate,
    "caller_id": _CallerRate,
    "destination": _DestinationRate,
    "distinct_callees": _DistinctCallees,
    "concurrent_account": _Concurrent,
    "concurrent_tenant": _Concurrent,
}


def make_cap(spec: RuleSpec, parts: Parts | None = None) -> CapCheck:
    """The cap check of the rule's scope; ``parts`` gives caller-ID throttles."""
    if spec.params["scope"] == "caller_id":
        return _CallerRate(spec, parts)
    return _CAPS[spec.params["scope"]](spec)
