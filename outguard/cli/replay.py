"""``outguard policy replay``: the logged calls against a candidate policy."""

from __future__ import annotations

import time

import click

from outguard import policy_file, privacy
from outguard.cli.common import (
    CliError,
    EXIT_USAGE,
    current_settings,
    emit_json,
    epoch_of,
    json_option,
    on_terminal,
    table,
    translated,
    with_reader,
)
from outguard.replay import replay
from outguard.store.sqlite import SQLiteStore

MAX_DAYS = 31


@click.command("replay")
@click.argument("candidate", type=click.Path(exists=True, dir_okay=False))
@click.option("--days", default=7, show_default=True, help="The last N days (without --since).")
@click.option("--since", default=None, help="From (ISO date or time).")
@click.option("--until", default=None, help="Until (ISO date or time; default now).")
@click.option("--examples", default=3, show_default=True, help="Examples kept per change.")
@json_option
@with_reader
def policy_replay(store: SQLiteStore, candidate: str, days: int, since: str | None,
                  until: str | None, examples: int, as_json: bool) -> None:
    """Replay the call log against a CANDIDATE policy file before it goes live: which calls
    would change verdict (newly blocked, newly allowed, blocked by another rule), by rule
    and reason, with counts and examples. Lists, parties and consents are taken as they
    are now. Numbers are masked unless the settings' [api] show_numbers is on
    (OUTGUARD_API_SHOW_NUMBERS=1).

    \b
    Example:
      outguard policy replay candidate.toml --days 7
    """
    if not 1 <= days <= MAX_DAYS:
        raise CliError(f"--days must be 1-{MAX_DAYS}", EXIT_USAGE)
    with translated():
        policy = policy_file.read(candidate)
    end = epoch_of(until, time.time())
    start = epoch_of(since, end - days * 86400)
    if start >= end:
        raise CliError("--since must be before --until", EXIT_USAGE)

    def tick(n: int) -> None:
        if on_terminal() and not as_json:
            click.echo(f"\r{n:,} calls replayed", nl=False, err=True)

    privacy.configure(current_settings())
    report = replay(store, policy, start, end, examples=examples, mask=privacy.mask,
                    progress=tick).as_dict()
    if as_json:
        emit_json(report)
        return
    if on_terminal():
        click.echo("", err=True)
    by = report["by_change"]
    click.echo(f"{report['calls']:,} calls {report['since']} .. {report['until']} replayed in "
               f"{report['seconds']} s: {report['changed']:,} would change "
               f"({by['newly_blocked']:,} newly blocked, {by['newly_allowed']:,} newly "
               f"allowed, {by['other_rule']:,} blocked by another rule)")
    rows = [{**c, "example": (c["examples"][0]["destination"] + " " + c["examples"][0]["at"]
                              if c["examples"] else "")} for c in report["changes"]]
    table(rows, ["change", "count", "rule", "reason", "was_rule", "was_reason", "example"],
          empty="(no verdict would change)")
    for warning in report["warnings"][:5]:
        click.echo(f"warning: {warning}", err=True)
