"""What the admin commands share: the store options, error translation, exit codes and
output (tables for people, ``--json`` for scripts, progress bars only on a terminal).

Exit codes scripts can rely on:

====  ==========================================================================
0     done (``check`` / ``call``: the call is or was allowed)
1     error (a store, import, policy or network failure; the message says which)
2     usage: a bad option, argument or value (an invalid number, role, state ...)
3     not found: no such tenant, account, list, appeal ...; or the service is not
      running (``policy reload``, ``call``)
4     conflict: exists already, already decided, already lifted
5     blocked: ``check`` / ``call`` got a block verdict
====  ==========================================================================
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from outguard import config
from outguard.errors import Conflict, InvalidInput, NotFound, OutguardError
from outguard.store import is_postgres_url
from outguard.store import open_store as open_any_store
from outguard.store.sqlite import SQLiteStore
from rules.errors import PolicyError
from rules.policy_types import Policy

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_CONFLICT, EXIT_BLOCKED = 0, 1, 2, 3, 4, 5


class CliError(click.ClickException):
    """A ClickException with the exit code of the error's kind."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance


def exit_code_of(exc: OutguardError) -> int:
    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, Conflict):
        return EXIT_CONFLICT
    if isinstance(exc, InvalidInput):
        return EXIT_USAGE
    return EXIT_ERROR


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """OutguardError and PolicyError -> CliError (STYLE 8: only at the edge)."""
    try:
        yield
    except OutguardError as exc:
        raise CliError(str(exc), exit_code_of(exc)) from exc
    except PolicyError as exc:
        raise CliError("\n".join([str(exc), *(f"  {i}" for i in exc.issues)])) from exc


def store_options(fn: F) -> F:
    """``-c/--config`` (or OUTGUARD_CONFIG) and ``--store`` on a command."""
    fn = click.option("--store", "store_path", default=None, metavar="PATH",
                      help="SQLite store file (default: the settings' store).")(fn)
    fn = click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False),
                      envvar="OUTGUARD_CONFIG", help="Settings file (TOML); OUTGUARD_CONFIG.")(fn)
    return fn


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(fn)


def load_settings(config_file: str | None, store_path: str | None = None) -> config.Settings:
    """Defaults, the settings file, OUTGUARD_* variables, then ``--store``; kept for
    ``current_settings``."""
    overrides = {"store": store_path} if store_path else None
    with translated():
        settings = config.load(config_file, overrides=overrides)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta["outguard.settings"] = settings
    return settings


def existing_store(path: str) -> str:
    """``path`` when a store file is there; else exit 3 naming the path looked for. What
    only reads must never create an empty store where a path was mistyped. (A PostgreSQL
    URL names a server's database: opening it tells whether it is there.)"""
    if not is_postgres_url(path) and not Path(path).is_file():
        raise CliError(
            f"no outguard store at {Path(path).resolve()} (from --store, the settings "
            f"file's `store` or OUTGUARD_STORE); check the path. Commands that only read "
            f"never create one.", EXIT_NOT_FOUND)
    return path


@contextlib.contextmanager
def open_store(config_file: str | None, store_path: str | None, *,
               create: bool = True) -> Iterator[SQLiteStore]:
    """The store named by the options, closed (and flushed) afterwards. The settings are
    kept for ``current_settings``. ``create=False`` (read-only commands): exit 3 when
    there is no store file at that path."""
    settings = load_settings(config_file, store_path)
    if not create:
        existing_store(settings.store)
    with translated():
        store = open_any_store(settings.store)
    try:
        with translated():
            yield store
    finally:
        store.close()


def epoch_of(text: str | None, default: float) -> float:
    """An ISO 8601 date or time option (UTC when it names no zone) as epoch seconds;
    ``default`` when empty; exit 2 when it is not one."""
    if not text:
        return default
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{text!r} is not an ISO 8601 date or time", EXIT_USAGE) from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def current_settings() -> config.Settings:
    ctx = click.get_current_context(silent=True)
    found = ctx.meta.get("outguard.settings") if ctx is not None else None
    return found if isinstance(found, config.Settings) else config.Settings()


def e164(raw: str) -> str:
    """A number in the policy's default region, normalised; exit 2 when it is not one."""
    from rules.errors import NumberError
    from rules.numbers import normalise

    region = policy_of(current_settings()).default_region
    try:
        return normalise(raw, region)
    except NumberError as exc:
        raise CliError(f"{raw!r} is not a phone number: {exc}", EXIT_USAGE) from None


def policy_of(settings: config.Settings) -> Policy:
    """The policy the settings name (read once per command)."""
    from outguard.server import read_policy

    ctx = click.get_current_context(silent=True)
    cached = ctx.meta.get("outguard.policy") if ctx is not None else None
    if cached is not None and cached[0] == settings.policy:
        return cached[1]  # type: ignore[no-any-return]
    with translated():
        policy = read_policy(settings)
    if ctx is not None:
        ctx.meta["outguard.policy"] = (settings.policy, policy)
    return policy


def actor() -> str:
    """Who made a change from the command line, for the audit trail."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, empty: str = "(none)") -> None:
    """Aligned columns for people; an empty result says so."""
    if not rows:
        click.echo(empty)
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def output(data: Any, as_json: bool, columns: Sequence[str] | None = None) -> None:
    """JSON, a table (list of dicts) or ``key: value`` lines (one dict)."""
    if as_json:
        emit_json(data)
    elif isinstance(data, list):
        table(data, columns or (list(data[0]) if data else []))
    else:
        for key, value in data.items():
            click.echo(f"{key}: {_cell(value)}")


def on_terminal() -> bool:
    return sys.stderr.isatty()


def _store_decorator(fn: F, create: bool) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, config_file: str | None, store_path: str | None,
                **kwargs: Any) -> Any:
        with open_store(config_file, store_path, create=create) as store:
            return fn(*args, store=store, **kwargs)

    return store_options(wrapper)  # type: ignore[return-value]


def with_store(fn: F) -> F:
    """Open the store from ``config_file`` / ``store_path`` (created if absent: for
    commands that write) and pass it as ``store``."""
    return _store_decorator(fn, create=True)


def with_reader(fn: F) -> F:
    """``with_store`` for commands that only read: no store file there, exit 3."""
    return _store_decorator(fn, create=False)
