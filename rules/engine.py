"""The decision: ``decide`` (hot path) and ``explain`` (every rule's outcome).

Order: destination format, then the snapshot's compiled rules in stage order (party
status, caller ID, lists and register freshness, segment/region/line type, time windows,
caps), declaration order within a stage. The first enforce-mode block wins; shadow-mode
matches are recorded in ``Verdict.shadow`` and evaluation goes on. A destination on an
allow/consent list that exempts a rule id skips that rule. A destination that cannot be
normalised is blocked by the built-in rule ``destination_format`` (reason
destination_invalid, Q.850 28 -> SIP 484 by default).

Both functions are pure apart from ``snapshot.hits`` (decide counts blocks, shadow
matches and exemptions there; explain counts nothing).
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from rules.checks_base import NO_EXEMPTIONS, Check, Ctx, Hit
from rules.classification import segment_info
from rules.consent import exemptions, explain_exemption
from rules.errors import NumberError
from rules.model import CallAttempt, Counters, RuleMode, RuleOutcome, Verdict
from rules.numbers import normalise, to_key
from rules.snapshot import Snapshot

__all__ = ["decide", "explain", "refuse_channel", "CHANNEL_RULE", "FORMAT_RULE"]

FORMAT_RULE = "destination_format"
CHANNEL_RULE = "channel_format"


class _Template(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@lru_cache(maxsize=65536)
def _caller(raw: str, region: str, area: str | None) -> tuple[str | None, str | None]:
    """(canonical caller ID, error): callers repeat, so normalisation is cached."""
    if not raw.strip():
        return None, None
    try:
        return normalise(raw, region, area), None
    except NumberError as exc:
        return None, str(exc)


def _context(attempt: CallAttempt, snap: Snapshot, counters: Counters, now: datetime) -> Ctx | str:
    """The decision context, or the NumberError text for a bad destination."""
    region, area = snap.policy.default_region, snap.policy.home_area_code
    try:
        dest = normalise(attempt.destination, region, area)
    except NumberError as exc:
        return str(exc)
    caller, caller_error = _caller(attempt.caller_id, region, area)
    ts = now.timestamp()
    dest_key = to_key(dest)
    now_min = int(ts // 60)
    on = snap.index.lists_of(dest_key, now_min)
    exempt = NO_EXEMPTIONS
    if (on and snap.exempting) or (snap.consents and dest_key in snap.consents):
        found = exemptions(snap, attempt, dest_key, on, now)
        if found:
            exempt = found
    return Ctx(  # positional: this runs on every call
        attempt, now, ts, now_min, dest, dest_key, on, dest[1:].replace(":", ""), segment_info(dest),
        caller, segment_info(caller) if caller else None, caller_error, counters, exempt,
    )


def render_message(check: Check, hit: Hit, number: str) -> str:
    """The verdict's message: the rule's template filled with the hit's figures."""
    template = check.spec.message
    if not template:
        return hit.detail
    values = _Template(hit.figures)
    values.update(detail=hit.detail, number=number, rule=check.spec.id, reason=hit.reason)
    try:
        return template.format_map(values)
    except (ValueError, IndexError, KeyError, AttributeError, TypeError):
        return hit.detail  # a template the validator let through but cannot render


def _cause(check: Check, hit: Hit, snap: Snapshot) -> int:
    return check.spec.cause if check.spec.cause is not None else snap.policy.cause_for(hit.reason)


def decide(
    attempt: CallAttempt, snapshot: Snapshot, counters: Counters, now: datetime | None = None
) -> Verdict:
    """Screen one call attempt. Pure apart from ``snapshot.hits``; ``now`` defaults to attempt.at.

    A naive ``now`` / ``attempt.at`` is taken as UTC.
    """
    when = attempt.at if now is None else now
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    hits = snapshot.hits
    hits.add("", "decisions")
    ctx = _context(attempt, snapshot, counters, when)
    if isinstance(ctx, str):
        hits.add(FORMAT_RULE, "block")
        return Verdict(
            False, FORMAT_RULE, "destination_invalid", f"destination {attempt.destination!r}: {ctx}",
            cause=snapshot.policy.cause_for("destination_invalid"),
        )
    shadow: list[str] = []
    exempt = ctx.exempt
    for check in snapshot.checks:
        if check.filtered and not check.applies(ctx):
            continue
        if exempt and check.spec.id in exempt:
            hit = check.unexempt(ctx)  # a litigator list: no consent lifts it
            if hit is None:
                hits.add(check.spec.id, "exempt")
                continue
        else:
            hit = check.evaluate(ctx)
            if hit is None:
                continue
        spec = check.spec
        if spec.mode is RuleMode.SHADOW:
            shadow.append(spec.id)
            hits.add(spec.id, "shadow")
            continue
        hits.add(spec.id, "block")
        return Verdict(
            allowed=False,
            rule_id=spec.id,
            reason=hit.reason,
            message=render_message(check, hit, ctx.dest),
            cause=_cause(check, hit, snapshot),
            announcement=spec.announcement,
            shadow=tuple(shadow),
            destination_e164=ctx.dest,
            caller_id_e164=ctx.caller or "",
        )
    hits.add("", "allowed")
    return Verdict(
        True, "", "ok", "allowed", shadow=tuple(shadow),
        destination_e164=ctx.dest, caller_id_e164=ctx.caller or "",
    )


def refuse_channel(problems: list[str], snapshot: Snapshot) -> Verdict:
    """The verdict for a call whose channel variables are malformed (``problems`` say
    how): refused, reason ``channel_invalid``, never undecided."""
    snapshot.hits.add("", "decisions")
    snapshot.hits.add(CHANNEL_RULE, "block")
    return Verdict(False, CHANNEL_RULE, "channel_invalid", "; ".join(problems),
                   cause=snapshot.policy.cause_for("channel_invalid"))


def explain(
    attempt: CallAttempt, snapshot: Snapshot, counters: Counters, now: datetime | None = None
) -> list[RuleOutcome]:
    """Every rule's outcome in evaluation order, with the figures it used."""
    when = attempt.at if now is None else now
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    ctx = _context(attempt, snapshot, counters, when)
    if isinstance(ctx, str):
        cause = snapshot.policy.cause_for("destination_invalid")
        return [RuleOutcome(FORMAT_RULE, "format", RuleMode.ENFORCE, "matched", "destination_invalid", ctx, {}, True, cause)]
    info = ctx.dest_info
    first = RuleOutcome(FORMAT_RULE, "format", RuleMode.ENFORCE, "passed", "", "destination normalised", {
        "destination": ctx.dest, "region": info.region, "province": info.province, "city": info.city,
        "line_type": info.line_type.value, "timezones": list(info.timezones), "carrier": info.carrier,
        "caller_id": ctx.caller, "caller_id_error": ctx.caller_error,
    })
    out = [first]
    decided = False
    for check in snapshot.checks:
        outcome = _explain_one(check, ctx, snapshot, decided)
        decided = decided or outcome.decisive
        out.append(outcome)
    return out


def _explain_one(check: Check, ctx: Ctx, snap: Snapshot, decided: bool) -> RuleOutcome:
    spec = check.spec
    base: dict[str, Any] = {"rule_id": spec.id, "kind": spec.kind.value, "mode": spec.mode}
    if not check.applies(ctx):
        return RuleOutcome(**base, outcome="skipped", message="purpose or region filter does not apply")
    if spec.id in ctx.exempt:
        hit = check.unexempt(ctx)
        if hit is None:
            msg = explain_exemption(snap, ctx.attempt, ctx.dest_key, ctx.now, ctx.exempt, spec.id)
            return RuleOutcome(**base, outcome="skipped", reason="exempt", message=msg)
    else:
        hit = check.evaluate(ctx)
    figures = check.figures(ctx)
    if hit is None:
        return RuleOutcome(**base, outcome="passed", figures=figures)
    decisive = not decided and spec.mode is RuleMode.ENFORCE
    return RuleOutcome(
        **base, outcome="matched", reason=hit.reason, message=render_message(check, hit, ctx.dest),
        figures={**hit.figures, **figures}, decisive=decisive, cause=_cause(check, hit, snap),
    )
