"""Rule kinds 1-3: party status, caller-ID policy, destination lists and freshness.

Parameters (policy ``[[rules]]`` keys) per kind:

* ``party_status``: applies under every policy: a policy without one gets the built-in
  rule ``party_status`` (rules/policy_validate.py), and one that is shadowed, filtered or
  leaves out a party is refused at validation. ``parties`` (all of tenant, account,
  caller_id; the default),
  ``unknown`` ("allow" | "block": a tenant/account the store does not know). Reasons
  ``<party>_<state>``: account_suspended, tenant_disabled, caller_id_unverified, ...
  A suspension whose ``until`` has passed counts as active again.
* ``caller_id``: ``forbidden_prefixes`` (digit prefixes with country code, "86400",
  "8695", "8696"), ``require_owned``, ``require_verified``, ``block_invalid``,
  ``block_same_as_destination``, ``allow_missing``, ``allow_short_codes`` (default false:
  a short service number such as 10086, 12345, 110 or 95588 is never a caller ID),
  ``domestic_regions`` (ISO codes: a call to a number of one of these regions must present
  a caller ID of the same region). Reasons caller_id_missing, caller_id_service_number,
  caller_id_invalid, caller_id_is_destination, caller_id_foreign, caller_id_not_owned,
  caller_id_unverified.
* ``lists``: ``lists`` (names; default every dnc/blacklist/complaint/register/litigator
  list). Reasons dnc_listed, blacklisted, complaint_listed, register_listed,
  litigator_listed. A litigator list blocks even when a consent or allow list exempts the
  rule: the engine asks ``unexempt`` before skipping an exempted rule.
* ``register_freshness``: ``lists`` (default every register list), ``max_age_days``
  (default 31; a list's own max_age_days wins). The age runs from the registry's release
  date of the imported copy when the import gave it (``--released``), else from the
  import time. Reason register_stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rules.checks_base import Check, Ctx, Hit, Parts
from rules.model import ListKind, PartyKind, PartyState
from rules.policy_types import BLOCKING_LISTS, RuleKind, RuleSpec
from rules.snapshot_lists import ListView

_LIST_REASON = {
    ListKind.DO_NOT_CALL: "dnc_listed",
    ListKind.BLACKLIST: "blacklisted",
    ListKind.COMPLAINT: "complaint_listed",
    ListKind.REGISTER: "register_listed",
    ListKind.LITIGATOR: "litigator_listed",
}
_LIST_WORDS = {
    ListKind.DO_NOT_CALL: "do-not-call list",
    ListKind.BLACKLIST: "blacklist",
    ListKind.COMPLAINT: "complaint list",
    ListKind.REGISTER: "register",
    ListKind.LITIGATOR: "litigator list",
}

_TENANT, _ACCOUNT = PartyKind.TENANT, PartyKind.ACCOUNT


def _when(t: datetime | None) -> str:
    return "with no end" if t is None else f"until {t.isoformat(timespec='minutes')}"


class PartyStatusCheck(Check):
    kind = RuleKind.PARTY_STATUS
    __slots__ = ("_parts", "_parties", "_kinds", "_unknown_blocks")

    def __init__(self, spec: RuleSpec, parts: Parts) -> None:
        super().__init__(spec)
        self._parts = parts
        self._parties = parts.parties
        self._kinds = tuple(PartyKind(k) for k in spec.params["parties"])
        self._unknown_blocks = spec.params["unknown"] == "block"

    def _key(self, ctx: Ctx, kind: PartyKind) -> str | None:
        if kind is PartyKind.TENANT:
            return ctx.attempt.tenant
        if kind is PartyKind.ACCOUNT:
            return ctx.attempt.account
        return ctx.caller

    def evaluate(self, ctx: Ctx) -> Hit | None:
        get = self._parties.get
        a = ctx.attempt
        for kind in self._kinds:
            key = a.tenant if kind is _TENANT else a.account if kind is _ACCOUNT else ctx.caller
            if key is None:
                continue
            party = get((kind, key))
            if party is None:
                if self._unknown_blocks and kind is not PartyKind.CALLER_ID:
                    return Hit(f"{kind.value}_unknown", f"{kind.value} {key!r} is not known")
                continue
            state = party.state
            if state is PartyState.ACTIVE:
                continue
            if state is PartyState.SUSPENDED and party.until is not None and party.until <= ctx.now:
                continue  # the suspension has run out
            why = f" ({party.reason})" if party.reason else ""
            extra = f" {_when(party.until)}" if state is PartyState.SUSPENDED else ""
            return Hit(
                f"{kind.value}_{state.value}",
                f"{kind.value.replace('_', ' ')} {key} is {state.value}{extra}{why}",
                {"party": kind.value, "key": key, "state": state.value},
            )
        return None

    def figures(self, ctx: Ctx) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind in self._kinds:
            key = self._key(ctx, kind)
            party = self._parts.party(kind, key) if key else None
            out[kind.value] = "unknown" if party is None else party.state.value
        return out


class CallerIdCheck(Check):
    kind = RuleKind.CALLER_ID
    __slots__ = ("_parts", "_p")

    def __init__(self, spec: RuleSpec, parts: Parts) -> None:
        super().__init__(spec)
        self._parts = parts
        self._p = spec.params

    def evaluate(self, ctx: Ctx) -> Hit | None:
        p, raw = self._p, ctx.attempt.caller_id
        if not raw.strip():
            if p["allow_missing"]:
                return None
            return Hit("caller_id_missing", "no caller ID is presented")
        if ctx.caller is None or ctx.caller_info is None:
            if not p["block_invalid"]:
                return None
            return Hit("caller_id_invalid", f"caller ID {raw!r} is not a number: {ctx.caller_error}")
        digits = ctx.caller[1:].replace(":", "")
        for prefix in p["forbidden_prefixes"]:
            if digits.startswith(prefix):
                return Hit(
                    "caller_id_service_number",
                    f"caller ID {ctx.caller} is a service number (prefix {prefix}) "
                    "that must not be presented on outbound calls",
                    {"prefix": prefix},
                )
        if ":" in ctx.caller and not p["allow_short_codes"]:
            return Hit(
                "caller_id_service_number",
                f"caller ID {ctx.caller} is a short service number (carrier, bank or government"
                " line) that must not be presented on outbound calls",
                {"prefix": ctx.caller},
            )
        info = ctx.caller_info
        if p["block_invalid"] and not info.valid:
            return Hit("caller_id_invalid", f"caller ID {ctx.caller} is not a valid number")
        if p["block_same_as_destination"] and ctx.caller == ctx.dest:
            return Hit("caller_id_is_destination", "caller ID equals the destination (spoofed)")
        dest_region = ctx.dest_info.region
        if dest_region in p["domestic_regions"] and info.region != dest_region:
            return Hit(
                "caller_id_foreign",
                f"caller ID {ctx.caller} ({info.region or 'unknown region'}) on a domestic call"
                f" to {dest_region}: a call within {dest_region} must present a {dest_region} number",
                {"caller_region": info.region, "destination_region": dest_region},
            )
        return self._ownership(ctx, ctx.caller)

    def _ownership(self, ctx: Ctx, caller: str) -> Hit | None:
        party = self._parts.party(PartyKind.CALLER_ID, caller)
        if self._p["require_owned"] and (party is None or party.tenant != ctx.attempt.tenant):
            return Hit(
                "caller_id_not_owned",
                f"caller ID {caller} does not belong to tenant {ctx.attempt.tenant}",
            )
        if self._p["require_verified"]:
            until = party.verified_until if party is not None else None
            if until is None or until <= ctx.now:
                how = "missing" if until is None else f"expired {until.isoformat(timespec='minutes')}"
                return Hit("caller_id_unverified", f"caller ID {caller}: real-name verification {how}")
        return None

    def figures(self, ctx: Ctx) -> dict[str, Any]:
        party = self._parts.party(PartyKind.CALLER_ID, ctx.caller) if ctx.caller else None
        info = ctx.caller_info
        return {
            "caller_id": ctx.caller,
            "valid": info.valid if info else False,
            "line_type": info.line_type.value if info else None,
            "owner": party.tenant if party else None,
            "verified_until": party.verified_until.isoformat() if party and party.verified_until else None,
        }


def _select(views: Mapping[str, ListView], names: tuple[str, ...], kinds: frozenset[ListKind]) -> tuple[ListView, ...]:
    if names:
        return tuple(views[n] for n in names if n in views)
    return tuple(v for v in views.values() if v.spec.kind in kinds)


class ListsCheck(Check):
    kind = RuleKind.LISTS
    __slots__ = ("_views", "_litigators")

    def __init__(self, spec: RuleSpec, views: Mapping[str, ListView]) -> None:
        super().__init__(spec)
        self._views = _select(views, spec.params["lists"], BLOCKING_LISTS)
        self._litigators = tuple(v for v in self._views if v.spec.kind is ListKind.LITIGATOR)

    def evaluate(self, ctx: Ctx) -> Hit | None:
        return self._match(ctx, self._views)

    def unexempt(self, ctx: Ctx) -> Hit | None:
        """Litigator lists block whatever consent or allow list exempts this rule."""
        return self._match(ctx, self._litigators) if self._litigators else None

    def _match(self, ctx: Ctx, views: tuple[ListView, ...]) -> Hit | None:
        on = ctx.dest_lists
        if not on:
            return None
        a = ctx.attempt
        for view in views:
            if view.list_id in on and view.applies(a.tenant, a.campaign):
                kind = view.spec.kind
                return Hit(
                    _LIST_REASON.get(kind, "dnc_listed"),
                    f"{ctx.dest} is on the {_LIST_WORDS.get(kind, 'list')} {view.spec.name!r}"
                    f" ({view.scope_text()})",
                    {"list": view.spec.name},
                )
        return None

    def figures(self, ctx: Ctx) -> dict[str, Any]:
        a = ctx.attempt
        return {
            v.spec.name: (
                ("listed" if v.list_id in ctx.dest_lists else "not listed")
                if v.applies(a.tenant, a.campaign)
                else "out of scope"
            )
            for v in self._views
        }


class RegisterFreshnessCheck(Check):
    kind = RuleKind.REGISTER_FRESHNESS
    __slots__ = ("_views", "_max_days")

    def __init__(self, spec: RuleSpec, views: Mapping[str, ListView]) -> None:
        super().__init__(spec)
        self._views = _select(views, spec.params["lists"], frozenset({ListKind.REGISTER}))
        self._max_days: int = spec.params["max_age_days"]

    def _age(self, view: ListView, now: datetime) -> tuple[float | None, int]:
        limit = view.spec.max_age_days or self._max_days
        if view.imported_at is None:
            return None, limit
        return (now - view.imported_at).total_seconds() / 86400, limit

    def evaluate(self, ctx: Ctx) -> Hit | None:
        a = ctx.attempt
        for view in self._views:
            if not view.applies(a.tenant, a.campaign):
                continue
            age, limit = self._age(view, ctx.now)
            if age is None or age > limit:
                seen = "has never been imported" if age is None else f"is {age:.1f} days old"
                return Hit(
                    "register_stale",
                    f"register {view.spec.name!r} {seen} (max {limit} days): cannot screen",
                    {"list": view.spec.name, "age_days": age, "max_age_days": limit},
                )
        return None

    def figures(self, ctx: Ctx) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for view in self._views:
            age, limit = self._age(view, ctx.now)
            out[view.spec.name] = {"age_days": None if age is None else round(age, 2), "max_age_days": limit}
        return out

