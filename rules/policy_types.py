"""Typed policy objects (what a validated policy file becomes). No I/O here."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any

from rules.holidays import Calendar
from rules.model import ListKind, Purpose, RuleMode, Scope


class RuleKind(str, enum.Enum):
    PARTY_STATUS = "party_status"
    CALLER_ID = "caller_id"
    LISTS = "lists"
    REGISTER_FRESHNESS = "register_freshness"
    PREFIX = "prefix"
    REGION = "region"
    LINE_TYPE = "line_type"
    TIME_WINDOW = "time_window"
    CAP = "cap"


# The fixed evaluation order (DESIGN.md "Decision model"): stage, then file order.
STAGE: Mapping[RuleKind, int] = MappingProxyType(
    {
        RuleKind.PARTY_STATUS: 1,
        RuleKind.CALLER_ID: 2,
        RuleKind.LISTS: 3,
        RuleKind.REGISTER_FRESHNESS: 3,
        RuleKind.PREFIX: 4,
        RuleKind.REGION: 4,
        RuleKind.LINE_TYPE: 4,
        RuleKind.TIME_WINDOW: 5,
        RuleKind.CAP: 6,
    }
)

BLOCKING_LISTS = frozenset(
    {ListKind.DO_NOT_CALL, ListKind.BLACKLIST, ListKind.COMPLAINT, ListKind.REGISTER,
     ListKind.LITIGATOR}
)
EXEMPTING_LISTS = frozenset({ListKind.ALLOW, ListKind.CONSENT})

# Default Q.850 causes per reason code (ASTERISK-NOTES: 21 -> SIP 403, 17 -> 486,
# 34 -> 503, 19 -> 480, 28 -> 484). A policy's [causes] table overrides these; a rule's
# own ``cause`` overrides both.
DEFAULT_CAUSES: Mapping[str, int] = MappingProxyType(
    {
        "destination_invalid": 28,
        "channel_invalid": 21,
        **{f"{p}_{s}": 21 for p in ("tenant", "account", "caller_id") for s in ("suspended", "disabled", "unverified")},
        "account_unknown": 21,
        "tenant_unknown": 21,
        "caller_id_missing": 21,
        "caller_id_invalid": 21,
        "caller_id_not_owned": 21,
        "caller_id_service_number": 21,
        "caller_id_is_destination": 21,
        "caller_id_foreign": 21,
        "dnc_listed": 21,
        "blacklisted": 21,
        "complaint_listed": 21,
        "register_listed": 21,
        "litigator_listed": 21,
        "register_stale": 21,
        "prefix_denied": 21,
        "region_denied": 21,
        "line_type_denied": 21,
        "quiet_hours": 19,
        "holiday": 19,
        "rate_cap": 34,
        "caller_id_throttled": 34,
        "destination_cap": 21,
        "distinct_callees_cap": 34,
        "concurrency_cap": 17,
        "cap_store_unavailable": 34,
    }
)


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One rule as declared. ``params`` holds the kind's validated parameters."""

    id: str
    kind: RuleKind
    mode: RuleMode = RuleMode.ENFORCE
    cause: int | None = None
    announcement: str | None = None
    message: str | None = None  # template; {detail}, {number}, {rule} and figures
    purposes: frozenset[Purpose] = frozenset()  # empty: every purpose
    regions: frozenset[str] = frozenset()  # destination regions; empty: every region
    provinces: frozenset[str] = frozenset()  # destination provinces/states; empty: all
    params: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # "file:line"


@dataclass(frozen=True, slots=True)
class ListSpec:
    """A named list as the policy declares it (the store supplies its entries)."""

    name: str
    kind: ListKind
    scope: Scope = Scope.GLOBAL
    scope_key: str | None = None
    max_age_days: int | None = None  # registers: maximum age of the last import
    exempts: tuple[str, ...] = ()  # allow/consent lists: rule ids they exempt from
    source: str = ""


Span = tuple[int, int]  # minutes from midnight, [start, end)


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Allowed calling hours. ``hours[weekday]`` (0 = Monday) lists open spans."""

    name: str
    hours: Mapping[int, tuple[Span, ...]]
    holidays: frozenset[date] = frozenset()
    holiday_hours: tuple[Span, ...] = ()
    #: make-up working days (调休): weekend dates that are working days; open with
    #: ``workday_hours`` (default: Monday's hours)
    workdays: frozenset[date] = frozenset()
    workday_hours: tuple[Span, ...] = ()
    zone: str | None = None  # fallback when the number gives none; default: policy zone
    callee_zone: bool = True  # use the callee's zone(s) when the number tells them
    source: str = ""
    #: the holiday calendar (rules/calendars/NAME.toml) whose days it added, and their names
    calendar: str | None = None
    holiday_names: Mapping[date, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PackSource:
    """Where one figure of a jurisdiction pack comes from."""

    figure: str  # the rule or number it backs, in words
    basis: str  # law | practice
    cite: str  # the regulation, order, or published practice
    url: str = ""


@dataclass(frozen=True, slots=True)
class Pack:
    """A policy file's statement about itself (rules/packs.py): sources, date checked."""

    name: str
    title: str
    checked: date
    sources: tuple[PackSource, ...] = ()
    source: str = ""  # "file:line"


@dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[RuleSpec, ...] = ()
    lists: Mapping[str, ListSpec] = field(default_factory=dict)
    windows: Mapping[str, WindowSpec] = field(default_factory=dict)
    causes: Mapping[str, int] = field(default_factory=dict)
    default_region: str = "CN"
    timezone: str = "Asia/Shanghai"
    includes: tuple[str, ...] = ()
    source: str = ""
    #: the [enforcement] table (triggers, grading), passed through unvalidated for
    #: outguard.enforcement, with the (file, line) each key came from
    enforcement: Mapping[str, Any] = field(default_factory=dict)
    enforcement_origin: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    #: area code that completes local numbers dialled without one (PBX dial-plan style);
    #: None: such numbers are refused as destination_invalid
    home_area_code: str | None = None
    #: the [pack] of every file read (includes first, in order): sources and dates
    packs: tuple[Pack, ...] = ()
    #: holiday calendars the policy's ``calendars`` files add to or override (by name),
    #: over the shipped ones (rules/calendars/)
    calendars: Mapping[str, Calendar] = field(default_factory=dict)

    def cause_for(self, reason: str) -> int:
        return self.causes.get(reason, DEFAULT_CAUSES.get(reason, 21))

    def ordered_rules(self) -> tuple[RuleSpec, ...]:
        """Rules in evaluation order: stage first, then declaration order."""
        indexed = sorted(enumerate(self.rules), key=lambda p: (STAGE[p[1].kind], p[0]))
        return tuple(r for _, r in indexed)
