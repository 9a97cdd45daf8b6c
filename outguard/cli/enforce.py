"""``outguard suspend | lift | disable | status | appeals | complaints | risk``: the
enforcement lifecycle (封号, 申诉, 解封) through the enforcement facade, on the store file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from outguard import views
from outguard.cli.common import (
    EXIT_USAGE,
    CliError,
    actor,
    emit_json,
    epoch_of,
    existing_store,
    json_option,
    load_settings,
    output,
    policy_of,
    store_options,
    translated,
)
from outguard.errors import NotFound
from outguard.store.aio import AsyncStore
from outguard.store.base import COMPLAINT_CATEGORIES
from outguard.store import open_store as open_any_store
from rules.model import PartyKind

T = TypeVar("T")
#: what a deadline flagged calendar_unknown means, for people
UNKNOWN_NOTE = ("a deadline runs into a year its holiday calendar does not know: it was "
                "counted Monday-Friday; check it by hand, or add the year "
                "(README: Complaint deadlines)")
class _Kind(click.Choice):  # type: ignore[type-arg]
    """tenant | account | caller_id; ``caller-id`` too, as the ``caller-ids`` commands
    spell it."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        return super().convert(str(value).replace("-", "_"), param, ctx)


KIND = _Kind([k.value for k in PartyKind])
SUSPENSION_COLUMNS = ["id", "party_kind", "party_key", "reason", "started_at", "ends_at",
                      "created_by"]
APPEAL_COLUMNS = ["id", "party_kind", "party_key", "state", "created_at", "text", "reviewer"]


def with_enforcer(config_file: str | None, store_path: str | None,
                  job: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``job(enforcer)`` against the store file, with the policy's enforcement table.

    The figures are replayed from the call log first; no background task runs. Every
    enforcement command acts on parties the store knows: no store file at the path,
    exit 3 (never an empty store created by a typo).
    """
    from outguard.enforcement.api import Enforcer

    settings = load_settings(config_file, store_path)
    existing_store(settings.store)
    policy = policy_of(settings)

    async def main() -> T:
        store = AsyncStore(open_any_store(settings.store))
        try:
            enforcer = Enforcer(store, policy)
            await enforcer.start(background=False)
            try:
                return await job(enforcer)
            finally:
                await enforcer.stop()
        finally:
            await store.aclose()

    with translated():
        return asyncio.run(main())


def step_on_record(id_name: str, option: str, option_help: str,
                   step: Callable[[Any, int, str], Awaitable[T]],
                   done: Callable[[T], str]) -> Callable[[Callable[[], None]], Callable[..., None]]:
    """A reviewer's step on one numbered record (an appeal, a complaint, a health task):
    the record's number, the required text the audit trail keeps (``option``), and the
    store options. The decorated function gives the command its name and help (its
    docstring, with the example); ``step(enforcer, number, text)`` does the work and
    ``done(result)`` is the line printed."""
    dest = option.lstrip("-").replace("-", "_")

    def command_for(stub: Callable[[], None]) -> Callable[..., None]:
        def command(config_file: str | None, store_path: str | None, **values: Any) -> None:
            number, text = int(values[id_name]), str(values[dest])
            click.echo(done(with_enforcer(config_file, store_path,
                                          lambda e: step(e, number, text))))

        command.__name__, command.__doc__ = stub.__name__, stub.__doc__
        return click.argument(id_name, type=int)(
            click.option(option, required=True, help=option_help)(store_options(command)))

    return command_for


def _duration(text: str | None) -> float | None:
    if text is None:
        return None
    from outguard.enforcement.policy import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def _key(kind: str, key: str) -> str:
    if kind != "caller_id":
        return key
    from outguard.cli.common import e164

    return e164(key)


@click.command()
@click.argument("kind", type=KIND)
@click.argument("key")
@click.option("--reason", required=True, help="Why (the party and reviewers see it).")
@click.option("--for", "duration", default=None,
              help="How long: 30m, 24h, 7d (default: the policy's next graded step).")
@click.option("--permanent", is_flag=True, help="No end (the same as `outguard disable`).")
@json_option
@store_options
def suspend(kind: str, key: str, reason: str, duration: str | None, permanent: bool,
            as_json: bool, config_file: str | None, store_path: str | None) -> None:
    """Suspend a tenant, account or caller ID (封号) now. Its calls are refused within
    seconds by a running service.

    \b
    Example:
      outguard suspend account seat-07 --reason "complaints from 12321" --for 24h
    """
    seconds = _duration(duration)
    s = with_enforcer(config_file, store_path, lambda e: e.suspend(
        kind, _key(kind, key), reason=reason, actor=actor(), duration_s=seconds,
        permanent=permanent))
    body = views.suspension(s)
    if as_json:
        emit_json(body)
    else:
        until = body["ends_at"] or "no end (disabled)"
        click.echo(f"{kind} {key} suspended until {until} (suspension {s.id})")


@click.command()
@click.argument("kind", type=KIND)
@click.argument("key")
@click.option("--reason", required=True, help="Why the ban ends.")
@click.option("--clear-strike", is_flag=True, help="Do not count it towards longer bans.")
@store_options
def lift(kind: str, key: str, reason: str, clear_strike: bool, config_file: str | None,
         store_path: str | None) -> None:
    """Lift every active suspension of a party (解封). Exit code 3 when none is active.

    \b
    Example:
      outguard lift account seat-07 --reason "agent retrained"
    """
    lifted = with_enforcer(config_file, store_path, lambda e: e.lift(
        kind, _key(kind, key), actor=actor(), reason=reason, clear_strike=clear_strike))
    click.echo(f"{kind} {key}: {len(lifted)} suspension(s) lifted")


@click.command()
@click.argument("kind", type=KIND)
@click.argument("key")
@click.option("--reason", required=True, help="Why.")
@store_options
def disable(kind: str, key: str, reason: str, config_file: str | None,
            store_path: str | None) -> None:
    """Disable a party permanently, until a person lifts it. Exit code 4 when it is
    disabled already.

    \b
    Example:
      outguard disable caller_id 01088886666 --reason "number returned to the carrier"
    """
    s = with_enforcer(config_file, store_path, lambda e: e.disable(
        kind, _key(kind, key), actor=actor(), reason=reason))
    click.echo(f"{kind} {key} disabled (suspension {s.id})")


@click.command()
@click.argument("kind", type=KIND)
@click.argument("key")
@json_option
@store_options
def status(kind: str, key: str, as_json: bool, config_file: str | None,
           store_path: str | None) -> None:
    """Is a party banned, why, until when; strikes, history, appeals and its figures;
    for a caller ID also its health (connect rate against its own history, the early
    warning, the throttle and remediation task, a week of daily figures).

    \b
    Example:
      outguard status account seat-07
    """
    async def job(e: Any) -> tuple[Any, Any, Any]:
        health = None
        if kind == "caller_id":  # caller-ID health: the connect-rate warning, its task
            try:
                health = (await e.health(_key(kind, key), days=7)).to_dict()
            except NotFound:  # known only by an appeal: no figures to show
                health = None
        return await e.status(kind, _key(kind, key)), e.risk(kind, _key(kind, key)), health

    st, fig, health = with_enforcer(config_file, store_path, job)
    body = {**st.to_dict(), "figures": fig.to_dict()}
    if health is not None:
        body["health"] = health
    if as_json:
        emit_json(body)
        return
    click.echo(f"{kind} {body['key']}: {body['state']}"
               + (f" until {body['until']}" if body["until"] else "")
               + (f" ({body['reason']})" if body["reason"] else ""))
    if st.can_call:
        click.echo("calls: allowed (as far as party status goes)")
    else:
        click.echo(f"calls: REFUSED, it cannot call: {st.why_not}")
    click.echo(f"strikes: {body['strikes']}; suspensions in history: {len(body['history'])}; "
               f"appeals: {len(body['appeals'])}")
    f = body["figures"]
    click.echo(f"last 24 h: {f['attempts']} attempts, {f['answered']} answered, connect rate "
               f"{_percent(f['connect_rate'])}, short-call ratio "
               f"{_percent(f['short_call_ratio'])}, {f['complaints']} complaints, "
               f"{f['marks']} marks")
    if health is not None:
        from outguard.cli.health import echo_health

        click.echo("health:")
        echo_health(health)


def _percent(ratio: float | None) -> str:
    """0.4567 -> 45.7%; no calls yet -> '-' (a ratio of nothing is not zero)."""
    return "-" if ratio is None else f"{ratio * 100:.1f}%"


@click.command()
@click.option("--kind", type=KIND, default="account", show_default=True, help="Which parties.")
@click.option("--window", default="24h", show_default=True, help="Figures over this window.")
@json_option
@store_options
def risk(kind: str, window: str, as_json: bool, config_file: str | None,
         store_path: str | None) -> None:
    """Risk figures of every party of a kind seen in the window: attempts, connect rate,
    short-call ratio, listed blocks, complaints, marks.

    \b
    Example:
      outguard risk --kind caller_id --window 7d
    """
    seconds = _duration(window) or 86400.0

    async def job(e: Any) -> list[Any]:
        return [f.to_dict() for f in e.risk_table(kind, window_s=seconds)]

    rows = with_enforcer(config_file, store_path, job)
    output(rows, as_json, ["key", "attempts", "allowed", "blocked", "answered", "connect_rate",
                           "short_call_ratio", "listed_blocks", "complaints", "marks"])


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Also ended and lifted ones.")
@click.option("--kind", type=KIND, default=None, help="Only this kind of party.")
@json_option
@store_options
def suspensions(show_all: bool, kind: str | None, as_json: bool, config_file: str | None,
                store_path: str | None) -> None:
    """List active suspensions (or all of them).

    \b
    Example:
      outguard suspensions --kind account
    """
    rows = with_enforcer(config_file, store_path, lambda e: e.list_suspensions(
        active_only=not show_all, kind=kind))
    output([views.suspension(s) for s in rows], as_json, SUSPENSION_COLUMNS)


# -- appeals -------------------------------------------------------------------------------

@click.group()
def appeals() -> None:
    """The appeal queue (申诉): list, show, submit, approve, reject.

    \b
    Example:
      outguard appeals list --state pending
    """


@appeals.command("list")
@click.option("--state", type=click.Choice(["pending", "approved", "rejected"]), default=None,
              help="Only appeals in this state.")
@click.option("--party", default=None, help="Only this party's appeals.")
@json_option
@store_options
def appeals_list(state: str | None, party: str | None, as_json: bool,
                 config_file: str | None, store_path: str | None) -> None:
    """List appeals, oldest first.

    \b
    Example:
      outguard appeals list --state pending --json
    """
    rows = with_enforcer(config_file, store_path,
                         lambda e: e.list_appeals(state, party_key=party))
    output([views.appeal(a) for a in rows], as_json, APPEAL_COLUMNS)


@appeals.command("show")
@click.argument("appeal_id", type=int)
@json_option
@store_options
def appeals_show(appeal_id: int, as_json: bool, config_file: str | None,
                 store_path: str | None) -> None:
    """Show one appeal. Exit code 3 when there is none with that id.

    \b
    Example:
      outguard appeals show 12
    """
    settings = load_settings(config_file, store_path)
    with translated(), open_any_store(existing_store(settings.store)) as store:
        output(views.appeal(store.get_appeal(appeal_id)), as_json)


@appeals.command("submit")
@click.argument("kind", type=KIND)
@click.argument("key")
@click.option("--text", required=True, help="What the party says.")
@click.option("--evidence", default="", help="Where the evidence is (a link, a file).")
@store_options
def appeals_submit(kind: str, key: str, text: str, evidence: str, config_file: str | None,
                   store_path: str | None) -> None:
    """File an appeal for a suspended party. Exit code 4 when one is pending already.

    \b
    Example:
      outguard appeals submit account seat-07 --text "the complaints were about another seat"
    """
    a = with_enforcer(config_file, store_path, lambda e: e.submit_appeal(
        kind, _key(kind, key), text=text, evidence=evidence, actor=actor()))
    click.echo(f"appeal {a.id} filed for {kind} {key}")


@appeals.command("approve")
@click.argument("appeal_id", type=int)
@click.option("--decision", required=True, help="The reviewer's reasoning.")
@click.option("--clear-strike", is_flag=True, help="Do not count the ban towards longer ones.")
@store_options
def appeals_approve(appeal_id: int, decision: str, clear_strike: bool,
                    config_file: str | None, store_path: str | None) -> None:
    """Approve an appeal: the party's suspensions are lifted. Exit code 4 when it was
    decided already.

    \b
    Example:
      outguard appeals approve 12 --decision "complaints were misattributed"
    """
    a = with_enforcer(config_file, store_path, lambda e: e.approve_appeal(
        appeal_id, reviewer=actor(), decision=decision, clear_strike=clear_strike))
    click.echo(f"appeal {a.id} approved; {a.party_kind.value} {a.party_key} unbanned")


@appeals.command("reject")
@step_on_record("appeal_id", "--decision", "Why (the party sees it).",
                lambda e, appeal, decision: e.reject_appeal(appeal, reviewer=actor(),
                                                            decision=decision),
                lambda a: f"appeal {a.id} rejected")
def appeals_reject() -> None:
    """Reject an appeal; the suspension stays.

    \b
    Example:
      outguard appeals reject 12 --decision "recordings confirm the complaints"
    """


# -- complaints ----------------------------------------------------------------------------

@click.group()
def complaints() -> None:
    """Record complaints (e.g. from 12321) and callees' harassment marks, one by one or
    from a CSV file.

    \b
    Example:
      outguard complaints add 13800138000 --caller-id 01088886666 --source 12321
    """


@complaints.command("add")
@click.argument("callee")
@click.option("--caller-id", required=True, help="The caller ID complained about.")
@click.option("--category", type=click.Choice(COMPLAINT_CATEGORIES), default="harassment",
              show_default=True, help="What kind of complaint.")
@click.option("--source", default="manual", show_default=True, help="e.g. 12321, ivr_opt_out.")
@click.option("--tenant", default=None, help="Default: the caller ID's owner.")
@click.option("--account", default=None, help="The account that made the call, if known.")
@click.option("--note", default="", help="Free text.")
@click.option("--mark", is_flag=True, help="A callee's harassment mark (标记), not a complaint.")
@click.option("--at", "at_text", default=None,
              help="When the person complained (ISO date or time, UTC unless it names a "
                   "zone; default now).")
@click.option("--received", default=None,
              help="When the company received it (ISO date or time, UTC unless it names a "
                   "zone; default now): a regulator's deadline runs from it.")
@store_options
def complaints_add(callee: str, caller_id: str, category: str, source: str,
                   tenant: str | None, account: str | None, note: str, mark: bool,
                   at_text: str | None, received: str | None, config_file: str | None,
                   store_path: str | None) -> None:
    """Record one complaint (the callee goes on the tenant's complaint list) or mark. A
    complaint from a regulator's channel (--source 12321, 12300, fcc, ofcom) gets its
    response deadline (see `outguard complaints channels`).

    \b
    Example:
      outguard complaints add 13800138000 --caller-id 01088886666 --source 12321
    """
    got = datetime.fromtimestamp(epoch_of(received, 0.0), UTC) if received else None
    when = datetime.fromtimestamp(epoch_of(at_text, 0.0), UTC) if at_text else None
    if mark:
        c = with_enforcer(config_file, store_path, lambda e: e.add_mark(
            callee, caller_id, category=category, source=source if source != "manual"
            else "app_mark", tenant=tenant, actor=actor(), note=note, at=when))
    else:
        c = with_enforcer(config_file, store_path, lambda e: e.add_complaint(
            callee, caller_id, category=category, source=source, tenant=tenant,
            actor=actor(), account=account, note=note, at=when, received=got))
    due = f", due {c.due_at:%Y-%m-%d %H:%M} UTC" if c.due_at else ""
    click.echo(f"{c.kind} {c.id} recorded against {c.caller_id}{due}")
    if c.calendar_unknown:
        click.echo(f"warning: {UNKNOWN_NOTE}", err=True)


@complaints.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--marks", is_flag=True, help="The rows are callee marks, not complaints.")
@json_option
@store_options
def complaints_import(file: str, marks: bool, as_json: bool, config_file: str | None,
                      store_path: str | None) -> None:
    """Import complaints from CSV (header: callee,caller_id,category,source
    [,tenant,account,at,note]); bad rows are listed, good rows kept.

    \b
    Example:
      outguard complaints import 12321-weekly.csv
    """
    result = with_enforcer(config_file, store_path, lambda e: e.import_complaints(
        file, actor=actor(), kind="mark" if marks else "complaint"))
    if as_json:
        emit_json(result.to_dict())
        return
    click.echo(f"{result.added} added, {result.rejected} rejected of {result.lines} lines")
    for line, reason in result.rejects[:10]:
        click.echo(f"  line {line}: {reason}")


@complaints.command("list")
@click.option("--caller-id", default=None, help="Only complaints about this caller ID.")
@json_option
@store_options
def complaints_list(caller_id: str | None, as_json: bool, config_file: str | None,
                    store_path: str | None) -> None:
    """List complaints and marks.

    \b
    Example:
      outguard complaints list --caller-id 01088886666
    """
    settings = load_settings(config_file, store_path)
    with translated(), open_any_store(existing_store(settings.store)) as store:
        key = _key("caller_id", caller_id) if caller_id else None
        rows = [views.complaint(c) for c in store.list_complaints(caller_id=key)]
    output(rows, as_json, ["id", "kind", "caller_id", "reporter", "category", "source", "at",
                           "deadline"])


@complaints.command("due")
@click.option("--within-days", type=click.IntRange(0, 366), default=None,
              help="Only those due within N days (overdue ones included). Default: all open.")
@json_option
@store_options
def complaints_due(within_days: int | None, as_json: bool, config_file: str | None,
                   store_path: str | None) -> None:
    """Open complaints from regulators' channels, nearest deadline first: overdue,
    due_soon (within 2 days) or open. Exit 1 when any is overdue.

    \b
    Example:
      outguard complaints due --within-days 3
    """
    settings = load_settings(config_file, store_path)
    now = time.time()
    before = None if within_days is None else datetime.fromtimestamp(now + within_days * 86400.0,
                                                                     UTC)
    with translated(), open_any_store(existing_store(settings.store)) as store:
        rows = [views.complaint(c, now=now) for c in store.open_complaints_due(before)]
    output(rows, as_json, ["id", "deadline", "due_at", "calendar_unknown", "source",
                           "caller_id", "reporter", "received_at", "tenant"])
    if not as_json and any(r["calendar_unknown"] for r in rows):
        click.echo(f"warning: calendar_unknown: {UNKNOWN_NOTE}", err=True)
    if any(r["deadline"] == "overdue" for r in rows):
        raise SystemExit(1)


def _closed(c: Any) -> str:
    late = " (after its deadline)" if c.due_at and c.closed_at and c.closed_at > c.due_at else ""
    return f"complaint {c.id} closed by {c.closed_by}{late}"


@complaints.command("close")
@step_on_record("complaint_id", "--resolution", "What was done (the audit trail keeps it).",
                lambda e, complaint, resolution: e.close_complaint(
                    complaint, resolution=resolution, actor=actor()), _closed)
def complaints_close() -> None:
    """Close a complaint, saying what was done; who and when go to the audit trail.

    \b
    Example:
      outguard complaints close 7 --resolution "callee on dnc; agent 1007 coached"
    """


@complaints.command("channels")
@json_option
@store_options
def complaints_channels(as_json: bool, config_file: str | None, store_path: str | None) -> None:
    """The regulators' complaint channels and their response deadlines (law or practice,
    with the source), as the policy sets them ([enforcement.complaint_deadlines]), and
    the calendars they count on.

    \b
    Example:
      outguard complaints channels
    """
    from outguard.enforcement.policy import validate_enforcement

    with translated():
        deadlines = validate_enforcement(policy_of(load_settings(config_file, store_path)))\
            .deadlines
    rows = [c.as_dict() for c in deadlines.channels.values()]
    output(rows, as_json, ["channel", "act_days", "unit", "calendar", "next_working_day",
                           "basis", "forward_days", "cite"])
    if not as_json:
        for warning in deadlines.calendar_warnings(time.time()):
            click.echo(f"warning: {warning}", err=True)
