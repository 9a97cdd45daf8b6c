"""``outguard check | policy | report``: dry runs, the policy and the numbers."""

from __future__ import annotations

import asyncio
import csv
import sys
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import click

from outguard import policy_file
from outguard.checking import dry_run, offline_inputs, parse_at
from outguard.api.policies import summarise
from outguard.reports import call_report, parse_by
from outguard.cli.common import (
    EXIT_BLOCKED,
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    CliError,
    current_settings,
    emit_json,
    epoch_of,
    json_option,
    load_settings,
    output,
    policy_of,
    store_options,
    translated,
    with_reader,
    with_store,
)
from outguard.store.sqlite import SQLiteStore
from rules.errors import PolicyError
from rules.policy_types import Policy

REPORT_COLUMNS = ("attempts", "allowed", "blocked", "ended", "answered", "connect_rate",
                  "avg_duration", "short_calls", "short_call_ratio", "complaints",
                  "blocked_by_reason")


@click.command()
@click.argument("number")
@click.option("--account", required=True, help="The calling account (seat, campaign).")
@click.option("--caller-id", default="", help="The caller ID the call would present.")
@click.option("--at", "at_text", default=None,
              help="When: ISO 8601 or HH:MM in the policy's zone (default: now).")
@click.option("--purpose", default="", help="marketing (default), service, collection, "
              "notification.")
@click.option("--tenant", default="", help="Default: the account's tenant.")
@click.option("--campaign", default="", help="Campaign id, for campaign-scoped lists.")
@json_option
@with_reader
def check(store: SQLiteStore, number: str, account: str, caller_id: str, at_text: str | None,
          purpose: str, tenant: str, campaign: str, as_json: bool) -> None:
    """Dry run: what outguard would decide for a call, rule by rule, from the store and the
    policy (counters replayed from the call log). No PBX, nothing recorded.

    Exit code 0 when the call would be allowed, 5 when it would be blocked.

    \b
    Example:
      outguard check 13900139000 --account seat-01 --caller-id 01088886666 --at 21:30
    """
    settings = current_settings()
    policy = policy_of(settings)
    at = parse_at(at_text, policy.timezone)
    snapshot, counters = offline_inputs(store, policy, at)
    result = dry_run(snapshot, counters, number=number, account=account, caller_id=caller_id,
                     at=at, tenant=tenant, purpose=purpose, campaign=campaign,
                     default_tenant=settings.default_tenant)
    body = result.as_dict()
    body["warnings"] = _calendar_warnings(store, policy, at)
    if as_json:
        emit_json(body)
    else:
        a = body["attempt"]
        click.echo(f"{body['verdict'].upper()}: {body['message']}"
                   + (f" (rule {body['rule']}, reason {body['reason']}, cause {body['cause']})"
                      if body["verdict"] == "block" else ""))
        click.echo(f"call {a['destination']} from {a['account']} ({a['tenant']}) caller ID "
                   f"{a['caller_id'] or '-'} at {a['at']} purpose {a['purpose']}")
        click.echo("")
        output([{"rule": r["rule"], "kind": r["kind"], "mode": r["mode"],
                 "outcome": r["outcome"] + (" *" if r["decisive"] else ""),
                 "reason": r["reason"], "message": r["message"]} for r in body["rules"]],
               False, ["rule", "kind", "mode", "outcome", "reason", "message"])
        for warning in body["warnings"]:
            click.echo(f"warning: {warning}", err=True)
    if not result.allowed:
        sys.exit(EXIT_BLOCKED)


def _calendar_warnings(store: SQLiteStore, policy: Policy, at: datetime) -> list[str]:
    """The holiday calendars' warnings (``deadlines.calendar_warnings``), and any window
    whose calendar does not know the year of the call checked."""
    from outguard.enforcement.deadlines import calendar_warnings
    from outguard.enforcement.policy import validate_enforcement

    try:
        deadlines = validate_enforcement(policy).deadlines
    except PolicyError:
        return []  # the policy's own check reports it
    unknown = sum(1 for c in store.open_complaints_due() if c.calendar_unknown)
    out = calendar_warnings(deadlines, policy, time.time(), unknown)
    for window in policy.windows.values():
        cal = deadlines.calendar(window.calendar)
        if cal is not None and not cal.known(at.year):
            out.append(f"window {window.name}: calendar {cal.name} does not know {at.year}:"
                       " no holiday or make-up working day is applied then")
    return out


# -- policy --------------------------------------------------------------------------------

@click.group()
def policy() -> None:
    """Validate, show and reload the screening policy.

    \b
    Example:
      outguard policy validate /etc/outguard/policy.toml
    """


@policy.command("validate")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@store_options
@json_option
def policy_validate(file: str | None, config_file: str | None, store_path: str | None,
                    as_json: bool) -> None:
    """Check a policy file (default: the one the settings name) and list every problem
    with its file and line. Exit code 1 when it is invalid.

    \b
    Example:
      outguard policy validate policy.toml
    """
    path = file or load_settings(config_file, store_path).policy
    if not path:
        raise CliError("no policy file given and the settings name none (the embedded demo "
                       "policy is always valid)", EXIT_USAGE)
    try:
        loaded = policy_file.read(path)  # the checks start and reload make, all of them
    except PolicyError as exc:
        issues = [{"file": i.file, "line": i.line, "key": i.key, "message": i.message}
                  for i in exc.issues]
        if as_json:
            emit_json({"valid": False, "issues": issues})
        else:
            for i in exc.issues:
                click.echo(str(i), err=True)
            click.echo(f"{path}: {len(issues)} problem(s)", err=True)
        sys.exit(EXIT_ERROR)
    if as_json:
        emit_json({"valid": True, "rules": len(loaded.rules), "lists": len(loaded.lists)})
    else:
        click.echo(f"{path}: valid ({len(loaded.rules)} rules, {len(loaded.lists)} lists)")


@policy.command("show")
@store_options
@json_option
def policy_show(config_file: str | None, store_path: str | None, as_json: bool) -> None:
    """Show the policy the settings name: rules in evaluation order, lists, windows.

    \b
    Example:
      outguard policy show --json
    """
    body = summarise(policy_of(load_settings(config_file, store_path)))
    if as_json:
        emit_json(body)
        return
    click.echo(f"policy {body['source']} (region {body['default_region']}, "
               f"zone {body['timezone']})")
    output([{k: r[k] for k in ("stage", "id", "kind", "mode", "cause", "purposes")}
            for r in body["rules"]], False, ["stage", "id", "kind", "mode", "cause", "purposes"])
    click.echo("lists: " + (", ".join(f"{x['name']} ({x['kind']})" for x in body["lists"])
                            or "-"))
    click.echo("windows: " + (", ".join(body["windows"]) or "-"))
    for pack in body["packs"]:
        click.echo(f"pack {pack['name']}: {pack['title']} (sources checked {pack['checked']})")
        for src in pack["sources"]:
            url = f" <{src['url']}>" if src["url"] else ""
            click.echo(f"  [{src['basis']}] {src['figure']}: {src['cite']}{url}")


@policy.command("reload")
@click.option("--url", default=None, help="The service's API (default: from the settings).")
@click.option("--token", envvar="OUTGUARD_TOKEN", required=True,
              help="An admin API token; OUTGUARD_TOKEN.")
@store_options
def policy_reload(url: str | None, token: str, config_file: str | None,
                  store_path: str | None) -> None:
    """Tell the running service to read its policy file again. The old policy stays when
    the new one is invalid (exit 1, with every problem); exit 3 when nothing answers.

    \b
    Example:
      OUTGUARD_TOKEN=og_... outguard policy reload
    """
    settings = load_settings(config_file, store_path)
    base = url or f"http://{settings.api.host}:{settings.api.port}"
    status, body = asyncio.run(api_call("POST", base, "/api/policy/reload", token))
    if status == 200:
        click.echo(f"reloaded {body.get('source') or 'the embedded policy'}: "
                   f"{body.get('rules')} rules")
        return
    lines = [f"reload refused ({status} {body.get('error_id')}): {body.get('message')}"]
    lines += [f"  {i['file']}:{i['line']}: {i['key']}: {i['message']}"
              for i in body.get("issues", [])]
    raise CliError("\n".join(lines), EXIT_ERROR)


async def api_call(method: str, base: str, path: str, token: str,
                   body: Any = None) -> tuple[int, dict[str, Any]]:
    """One request to a running service's API; exit 3 when it does not answer."""
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.request(
                method, base.rstrip("/") + path, json=body, headers=headers) as reply:
                try:
                    data = await reply.json(content_type=None)
                except ValueError:
                    data = {"message": (await reply.text())[:200]}
                return reply.status, data if isinstance(data, dict) else {"data": data}
    except (aiohttp.ClientConnectionError, TimeoutError) as exc:
        raise CliError(f"outguard is not answering at {base}: {exc}", EXIT_NOT_FOUND) from None


# -- report --------------------------------------------------------------------------------

@click.command()
@click.option("--by", default="day", show_default=True,
              help="Group by: day or hour, pbx, tenant, account (comma-separated).")
@click.option("--days", default=7, show_default=True, help="The last N days (without --since).")
@click.option("--since", default=None, help="From (ISO date or time).")
@click.option("--until", default=None, help="Until (ISO date or time; default now).")
@click.option("--tenant", default=None, help="Only this tenant.")
@click.option("--account", default=None, help="Only this account.")
@click.option("--pbx", default=None, help="Only this PBX's calls (its [[ari]]/[[ami]] name).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV output (for spreadsheets).")
@json_option
@with_reader
def report(store: SQLiteStore, by: str, days: int, since: str | None, until: str | None,
           tenant: str | None, account: str | None, pbx: str | None, as_csv: bool,
           as_json: bool) -> None:
    """Calls by day, PBX, tenant and/or account: attempts, allowed, blocked by reason, answered,
    connect rate (接通率), average duration, short-call ratio, complaints.

    \b
    Example:
      outguard report --by day,account --days 30 --csv > calls.csv
      outguard report --by pbx --days 1
    """
    with translated():
        groups = parse_by(by)
    now = time.time()
    start = epoch_of(since, now - days * 86400)
    end = epoch_of(until, now + 1)
    body = call_report(store, policy_of(current_settings()), by=groups, since=start,
                       until=end, tenant=tenant, account=account, pbx=pbx)
    if as_json:
        emit_json(body)
        return
    columns = [*groups, *REPORT_COLUMNS]
    rows = [*body["rows"], {**{g: "TOTAL" for g in groups[:1]}, **body["total"]}]
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["; ".join(f"{k}={v}" for k, v in row.get(c, {}).items())
                             if c == "blocked_by_reason" else row.get(c, "") for c in columns])
        return
    click.echo(f"calls {datetime.fromtimestamp(start, UTC):%Y-%m-%d %H:%M} .. "
               f"{datetime.fromtimestamp(end, UTC):%Y-%m-%d %H:%M} UTC, days in {body['timezone']}")
    output(rows if body["rows"] else [], False, columns)
    click.echo(f"connect rate = answered / ended; a short call is answered and under "
               f"{body['short_call_s']:g} s (the policy's short_call_s); complaints count "
               f"against the account that last called the complainant from that caller ID")
