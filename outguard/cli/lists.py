"""``outguard lists``: do-not-call lists, blacklists, consent and allow lists."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from outguard import views
from outguard.cli.common import (
    actor,
    current_settings,
    emit_json,
    json_option,
    on_terminal,
    output,
    policy_of,
    translated,
    with_reader,
    with_store,
)
from outguard.cli.parties import _date
from outguard.store.base import ImportProgress
from outguard.store.sqlite import SQLiteStore
from rules.model import ListKind, Scope


@click.group()
def lists() -> None:
    """Show, create, fill, import and export number lists (dnc, blacklist, complaint,
    register, allow, consent).

    \b
    Example:
      outguard lists import dnc national-dnc.csv --mode replace
    """


@lists.command("show")
@click.argument("name", required=False)
@click.option("--search", default="", help="Only numbers containing these digits.")
@click.option("--limit", default=50, show_default=True, help="At most this many entries.")
@json_option
@with_reader
def lists_show(store: SQLiteStore, name: str | None, search: str, limit: int,
               as_json: bool) -> None:
    """Without NAME: every list with its entry count. With NAME: its entries.

    \b
    Example:
      outguard lists show dnc --search 139001
    """
    if name is None:
        rows = [views.list_record(r, store.count_entries(r.name)) for r in store.list_lists()]
        output(rows, as_json, ["name", "kind", "scope", "scope_key", "entries", "description"])
        return
    store.get_list(name)
    digits = "".join(ch for ch in search if ch.isdigit())
    found: list[dict[str, Any]] = []
    for entry in store.iter_entries(name):
        if digits and digits not in entry.e164:
            continue
        found.append(views.entry(entry))
        if len(found) >= limit:
            break
    output(found, as_json, ["e164", "expires_at", "source", "reason"])


@lists.command("create")
@click.argument("name")
@click.option("--kind", type=click.Choice([k.value for k in ListKind]), required=True,
              help="What the list does.")
@click.option("--scope", type=click.Choice([s.value for s in Scope]), default="global",
              show_default=True, help="Who it applies to.")
@click.option("--scope-key", default=None, help="The tenant or campaign id of a scoped list.")
@click.option("--description", default="", help="What the list is.")
@with_store
def lists_create(store: SQLiteStore, name: str, kind: str, scope: str, scope_key: str | None,
                 description: str) -> None:
    """Create a list. The policy decides what a list does to calls.

    \b
    Example:
      outguard lists create dnc-acme --kind dnc --scope tenant --scope-key acme
    """
    store.create_list(name, kind, scope=scope, scope_key=scope_key, description=description,
                      actor=actor())
    click.echo(f"list {name} created")


@lists.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask.")
@with_store
def lists_delete(store: SQLiteStore, name: str, yes: bool) -> None:
    """Delete a list and every entry on it.

    \b
    Example:
      outguard lists delete old-campaign --yes
    """
    store.get_list(name)
    if not yes and sys.stdin.isatty():
        click.confirm(f"delete list {name} and its {store.count_entries(name)} entries?",
                      abort=True)
    store.delete_list(name, actor=actor())
    click.echo(f"list {name} deleted")


def _region() -> str:
    return policy_of(current_settings()).default_region


@lists.command("add")
@click.argument("name")
@click.argument("numbers", nargs=-1, required=True)
@click.option("--reason", default=None, help="Why (shown in explanations).")
@click.option("--expires", default=None, help="Expiry (ISO date or time).")
@click.option("--source", default="manual", show_default=True, help="Where it came from.")
@click.option("--evidence", default=None, help="Consent lists: where consent is recorded.")
@with_store
def lists_add(store: SQLiteStore, name: str, numbers: tuple[str, ...], reason: str | None,
              expires: str | None, source: str, evidence: str | None) -> None:
    """Add numbers to a list (any common form; they are normalised to E.164).

    \b
    Example:
      outguard lists add dnc 13900139000 "+86 139 0013 9001" --reason "asked on call"
    """
    added = store.add_entries(name, list(numbers), expires_at=_date(expires), source=source,
                              reason=reason, evidence=evidence, region=_region(), actor=actor())
    click.echo(f"{added} added, {len(numbers) - added} already on {name}")


@lists.command("remove")
@click.argument("name")
@click.argument("numbers", nargs=-1, required=True)
@with_store
def lists_remove(store: SQLiteStore, name: str, numbers: tuple[str, ...]) -> None:
    """Remove numbers from a list.

    \b
    Example:
      outguard lists remove dnc 13900139000
    """
    removed = store.remove_entries(name, list(numbers), region=_region(), actor=actor())
    click.echo(f"{removed} removed from {name}")


@lists.command("find")
@click.argument("number")
@json_option
@with_reader
def lists_find(store: SQLiteStore, number: str, as_json: bool) -> None:
    """Which lists a number is on.

    \b
    Example:
      outguard lists find 13900139000
    """
    from outguard.cli.common import e164

    output([views.entry(e) for e in store.find_entries(e164(number))], as_json,
           ["list", "e164", "expires_at", "reason"])


@lists.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--mode", type=click.Choice(["replace", "add"]), default="replace",
              show_default=True, help="replace: the list becomes the file; add: merge.")
@click.option("--format", "fmt", type=click.Choice(["auto", "text", "csv", "us_registry"]),
              default="auto", show_default=True, help="File format.")
@click.option("--reject-file", default=None, help="Write every rejected line here.")
@click.option("--reason", default=None, help="Reason stored on the entries.")
@click.option("--expires", default=None, help="Expiry of the imported entries (ISO).")
@click.option("--max-reject-ratio", type=click.FloatRange(0, 1), default=None,
              help="Refuse the import when more than this share of lines is rejected "
                   "(default 0.01 = 1% for --mode replace, no limit for add).")
@click.option("--released", default=None, metavar="DATE",
              help="When the registry released this copy (ISO date/time; registers' age "
                   "runs from it, default: the import time).")
@json_option
@with_store
def lists_import(store: SQLiteStore, name: str, file: str, mode: str, fmt: str,
                 reject_file: str | None, reason: str | None, expires: str | None,
                 max_reject_ratio: float | None, released: str | None,
                 as_json: bool) -> None:
    """Import a file into a list, all or nothing (a failure leaves the list as it was).

    A replace import with more than 1% rejected lines is refused (--max-reject-ratio), so a
    wrong file never wipes a list. Shows a progress bar on a terminal. Exit code 1 when
    the import is refused; every rejected line is named (file:line: reason).

    \b
    Example:
      outguard lists import dnc national-dnc.csv --mode replace --reject-file rejects.txt
      outguard lists import us_national_dnc 2026-11-30.txt --released 2026-11-30
    """
    size = Path(file).stat().st_size
    with _bar(size, f"importing {Path(file).name}") as advance:
        result = store.import_list(
            name, file, mode=mode, fmt=fmt, region=_region(), source=Path(file).name,
            reason=reason, expires_at=_date(expires), reject_file=reject_file,
            progress=advance, progress_every=20_000, actor=actor(),
            max_reject_ratio=max_reject_ratio, released_at=_date(released))
    body = {k: getattr(result, k) for k in ("list_name", "mode", "lines", "accepted",
                                            "duplicates", "rejected", "added", "removed",
                                            "total", "seconds")}
    body["rejects"] = [{"line": r.line, "reason": r.reason, "text": r.text}
                       for r in result.rejects[:20]]
    if as_json:
        emit_json(body)
        return
    click.echo(f"{name}: {result.accepted} numbers accepted, {result.rejected} lines rejected, "
               f"{result.added} added, {result.removed} removed, {result.total} on the list "
               f"({result.seconds:.1f} s)")
    for r in result.rejects[:10]:
        click.echo(f"  {file}:{r.line}: {r.reason}  ({r.text})")
    if result.rejected > 10:
        more = "" if reject_file else "; --reject-file FILE lists them all"
        click.echo(f"  ... and {result.rejected - 10} more rejected lines{more}")


class _bar:
    """A click progress bar on a terminal fed by the import's progress callback; plain
    (nothing) when piped."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label = total, label
        self.bar: Any = None
        self.done = 0

    def __enter__(self) -> Any:
        if on_terminal():
            self.bar = click.progressbar(length=max(self.total, 1), label=self.label,
                                         file=sys.stderr)
            self.bar.__enter__()
        return self.advance

    def advance(self, progress: ImportProgress) -> None:
        if self.bar is not None:
            self.bar.update(max(0, progress.bytes_read - self.done))
            self.done = max(self.done, progress.bytes_read)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


@lists.command("export")
@click.argument("name")
@click.option("-o", "--output", "out", default="-", help="File to write (default: stdout).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv",
              show_default=True, help="Output format.")
@with_reader
def lists_export(store: SQLiteStore, name: str, out: str, fmt: str) -> None:
    """Export a list (streamed: constant memory for any size).

    \b
    Example:
      outguard lists export dnc -o dnc.csv
    """
    if out == "-":
        n = store.export_list(name, sys.stdout, fmt)
        return
    total = store.count_entries(name)
    with translated(), open(out, "w", encoding="utf-8", newline="") as f:
        if on_terminal():
            with click.progressbar(length=max(total, 1), label=f"exporting {name}",
                                   file=sys.stderr) as bar:
                n = store.export_list(name, _Counting(f, bar), fmt)  # type: ignore[arg-type]
        else:
            n = store.export_list(name, f, fmt)
    click.echo(f"{n} entries written to {out}", err=True)


class _Counting:
    """A text file that advances a progress bar by the lines written through it."""

    def __init__(self, f: Any, bar: Any) -> None:
        self.f, self.bar = f, bar

    def write(self, text: str) -> int:
        self.bar.update(text.count("\n"))
        return int(self.f.write(text))
