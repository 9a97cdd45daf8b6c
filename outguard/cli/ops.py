"""``outguard backup`` and ``outguard prune``: a consistent copy of the store while the
service runs, and the call log's retention."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click

from outguard.cli.common import (
    EXIT_USAGE,
    CliError,
    actor,
    existing_store,
    json_option,
    load_settings,
    output,
    store_options,
    translated,
    with_store,
)
from outguard.store import maintenance
from outguard.store.sqlite import SQLiteStore


@click.command()
@click.argument("dest", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
@store_options
@json_option
def backup(dest: str, force: bool, config_file: str | None, store_path: str | None,
           as_json: bool) -> None:
    """Copy the SQLite store to DEST while the service keeps running (SQLite's online
    backup API: one consistent state, WAL included; DEST is a single file, mode 0600).
    Restore by stopping the service and putting DEST in the store's place.

    For a PostgreSQL store use pg_dump (README: Backups).

    \b
    Example:
      outguard backup /var/backups/outguard/outguard-$(date +%F).db
    """
    settings = load_settings(config_file, store_path)
    existing_store(settings.store)
    with translated():
        done = maintenance.backup(settings.store, dest, overwrite=force)
    output({"backup": done.path, "pages": done.pages, "bytes": done.bytes,
            "seconds": done.seconds}, as_json)


@click.command()
@click.option("--older-than", "days", type=click.IntRange(min=1), default=None,
              metavar="DAYS", help="Delete call-log rows decided more than DAYS days ago.")
@click.option("--dry-run", is_flag=True, help="Count the rows, delete nothing.")
@json_option
@with_store
def prune(store: SQLiteStore, days: int | None, dry_run: bool, as_json: bool) -> None:
    """Call-log retention: delete the rows of calls decided more than DAYS days ago (in
    chunks, so a running service's writes wait at most for one). Lists, suspensions,
    complaints and the audit log are kept. Keep at least as many days as your reports and
    risk windows look back (30 days for the demo policy's triggers).

    \b
    Example:
      outguard prune --older-than 180
    """
    if days is None:
        raise CliError("say how many days to keep: --older-than DAYS", EXIT_USAGE)
    before = time.time() - days * 86400
    cutoff = datetime.fromtimestamp(before, UTC).isoformat(timespec="seconds")
    if dry_run:
        n = maintenance.count_older(store, before)
        output({"would_delete": n, "before": cutoff}, as_json)
        return
    deleted = maintenance.prune_calls(store, before, actor=actor())
    output({"deleted": deleted, "before": cutoff}, as_json)
