"""``outguard tenants | accounts | caller-ids | users | tokens``: who calls, and who may
use the API. They edit the store file; a running service notices within seconds."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from outguard import views
from outguard.cli.common import (
    EXIT_USAGE,
    CliError,
    actor,
    e164,
    json_option,
    output,
    with_reader,
    with_store,
)
from outguard.store.base import ACCOUNT_KINDS, MATCH_KINDS, ROLES, VERIFICATIONS
from outguard.store.sqlite import SQLiteStore

STATES = click.Choice(["active", "disabled"])


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{value!r} is not an ISO 8601 date or time", EXIT_USAGE) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


# -- tenants -------------------------------------------------------------------------------

@click.group()
def tenants() -> None:
    """List, add and disable tenants (organisations, 机构).

    \b
    Example:
      outguard tenants add acme "ACME call centre"
    """


@tenants.command("list")
@json_option
@with_reader
def tenants_list(store: SQLiteStore, as_json: bool) -> None:
    """List every tenant.

    \b
    Example:
      outguard tenants list --json
    """
    output([views.tenant(t) for t in store.list_tenants()], as_json,
           ["id", "name", "state", "created_at"])


@tenants.command("add")
@click.argument("tenant_id")
@click.argument("name")
@json_option
@with_store
def tenants_add(store: SQLiteStore, tenant_id: str, name: str, as_json: bool) -> None:
    """Create a tenant. Exit code 4 when it exists already.

    \b
    Example:
      outguard tenants add acme "ACME call centre"
    """
    output(views.tenant(store.create_tenant(tenant_id, name, actor=actor())), as_json)


@tenants.command("set-state")
@click.argument("tenant_id")
@click.argument("state", type=STATES)
@with_store
def tenants_set_state(store: SQLiteStore, tenant_id: str, state: str) -> None:
    """Set a tenant's administrative state (disabled: its calls are refused).

    \b
    Example:
      outguard tenants set-state acme disabled
    """
    t = store.set_tenant_state(tenant_id, state, actor=actor())
    click.echo(f"tenant {t.id}: {t.state}")


# -- accounts ------------------------------------------------------------------------------

@click.group()
def accounts() -> None:
    """List, add and disable accounts (agent seats, campaigns, trunks) and map channels
    to them.

    \b
    Example:
      outguard accounts add seat-07 --tenant acme --name "Seat 7"
    """


@accounts.command("list")
@click.option("--tenant", default=None, help="Only this tenant's accounts.")
@json_option
@with_reader
def accounts_list(store: SQLiteStore, tenant: str | None, as_json: bool) -> None:
    """List accounts.

    \b
    Example:
      outguard accounts list --tenant acme
    """
    output([views.account(a) for a in store.list_accounts(tenant)], as_json,
           ["id", "tenant", "kind", "name", "state"])


@accounts.command("add")
@click.argument("account_id")
@click.option("--tenant", required=True, help="The tenant the account belongs to.")
@click.option("--kind", type=click.Choice(ACCOUNT_KINDS), default="agent", show_default=True,
              help="Agent seat, campaign or trunk.")
@click.option("--name", default="", help="A name people recognise.")
@json_option
@with_store
def accounts_add(store: SQLiteStore, account_id: str, tenant: str, kind: str, name: str,
                 as_json: bool) -> None:
    """Create an account. Exit code 3 when the tenant does not exist, 4 when the account does.

    \b
    Example:
      outguard accounts add seat-07 --tenant acme --name "Seat 7"
    """
    a = store.create_account(account_id, tenant, kind=kind, name=name, actor=actor())
    output(views.account(a), as_json)


@accounts.command("set-state")
@click.argument("account_id")
@click.argument("state", type=STATES)
@with_store
def accounts_set_state(store: SQLiteStore, account_id: str, state: str) -> None:
    """Set an account's administrative state (for bans use `outguard suspend`).

    \b
    Example:
      outguard accounts set-state seat-07 disabled
    """
    a = store.set_account_state(account_id, state, actor=actor())
    click.echo(f"account {a.id}: {a.state}")


@accounts.command("map")
@click.argument("account_id")
@click.option("--by", "match_kind", type=click.Choice(MATCH_KINDS), default="endpoint",
              show_default=True, help="What to match on the channel.")
@click.option("--pattern", required=True, help="Endpoint name, channel prefix or caller ID.")
@click.option("--priority", default=0, show_default=True, help="Higher wins.")
@with_store
def accounts_map(store: SQLiteStore, account_id: str, match_kind: str, pattern: str,
                 priority: int) -> None:
    """Map channels to an account when the dialplan sets no OUTGUARD_ACCOUNT.

    \b
    Example:
      outguard accounts map seat-07 --by endpoint --pattern 1007
    """
    m = store.add_account_mapping(match_kind, pattern, account_id, priority=priority,
                                  actor=actor())
    click.echo(f"mapping {m.id}: {m.match_kind} {m.pattern!r} -> {m.account_id}")


@accounts.command("mappings")
@json_option
@with_reader
def accounts_mappings(store: SQLiteStore, as_json: bool) -> None:
    """List the channel -> account mappings.

    \b
    Example:
      outguard accounts mappings
    """
    output([views.mapping(m) for m in store.list_account_mappings()], as_json,
           ["id", "match_kind", "pattern", "account", "priority"])


@accounts.command("unmap")
@click.argument("mapping_id", type=int)
@with_store
def accounts_unmap(store: SQLiteStore, mapping_id: int) -> None:
    """Remove a mapping (its id from `outguard accounts mappings`).

    \b
    Example:
      outguard accounts unmap 3
    """
    store.remove_account_mapping(mapping_id, actor=actor())
    click.echo(f"mapping {mapping_id} removed")


# -- caller IDs ----------------------------------------------------------------------------

@click.group("caller-ids")
def caller_ids() -> None:
    """List, add and update the caller IDs tenants present (ownership, real-name
    verification, state).

    \b
    Example:
      outguard caller-ids add 01088886666 --tenant acme --verification verified
    """


@caller_ids.command("list")
@click.option("--tenant", default=None, help="Only this tenant's caller IDs.")
@json_option
@with_reader
def caller_ids_list(store: SQLiteStore, tenant: str | None, as_json: bool) -> None:
    """List caller IDs.

    \b
    Example:
      outguard caller-ids list --tenant acme --json
    """
    output([views.caller_id(c) for c in store.list_caller_ids(tenant)], as_json,
           ["e164", "tenant", "type", "verification", "verified_until", "state"])


@caller_ids.command("add")
@click.argument("number")
@click.option("--tenant", required=True, help="The tenant that owns the number.")
@click.option("--type", "line_type", default="unknown", show_default=True,
              help="Line type: mobile, fixed, ...")
@click.option("--verification", type=click.Choice(VERIFICATIONS), default="missing",
              show_default=True, help="Real-name verification (实名) state.")
@click.option("--verified-until", default=None, help="Verification expiry (ISO date).")
@json_option
@with_store
def caller_ids_add(store: SQLiteStore, number: str, tenant: str, line_type: str,
                   verification: str, verified_until: str | None, as_json: bool) -> None:
    """Add (or replace) a caller ID.

    \b
    Example:
      outguard caller-ids add 01088886666 --tenant acme --verification verified --verified-until 2027-01-01
    """
    c = store.upsert_caller_id(e164(number), tenant, type=line_type, verification=verification,
                               verified_until=_date(verified_until), actor=actor())
    output(views.caller_id(c), as_json)


@caller_ids.command("set")
@click.argument("number")
@click.option("--state", type=STATES, default=None, help="active or disabled.")
@click.option("--verification", type=click.Choice(VERIFICATIONS), default=None,
              help="Real-name verification state.")
@click.option("--verified-until", default=None, help="Verification expiry (ISO date).")
@json_option
@with_store
def caller_ids_set(store: SQLiteStore, number: str, state: str | None,
                   verification: str | None, verified_until: str | None, as_json: bool) -> None:
    """Change a caller ID's state or verification; what is not given stays.

    \b
    Example:
      outguard caller-ids set 01088886666 --state disabled
    """
    old = store.get_caller_id(e164(number))
    c = store.upsert_caller_id(
        old.e164, old.tenant_id, type=old.type, verification=verification or old.verification,
        verified_until=_date(verified_until) or old.verified_until, state=state or old.state,
        actor=actor())
    output(views.caller_id(c), as_json)


@caller_ids.command("show")
@click.argument("number")
@json_option
@with_reader
def caller_ids_show(store: SQLiteStore, number: str, as_json: bool) -> None:
    """Show one caller ID. Exit code 3 when it is unknown.

    \b
    Example:
      outguard caller-ids show +861088886666
    """
    output(views.caller_id(store.get_caller_id(e164(number))), as_json)


# -- users and tokens ----------------------------------------------------------------------

@click.group()
def users() -> None:
    """List, add, disable and enable API users (roles: admin, reviewer, readonly).

    \b
    Example:
      outguard users add alice --role reviewer
    """


@users.command("list")
@json_option
@with_reader
def users_list(store: SQLiteStore, as_json: bool) -> None:
    """List API users.

    \b
    Example:
      outguard users list
    """
    output([views.user(u) for u in store.list_users()], as_json,
           ["name", "role", "disabled", "created_at"])


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="admin: everything; reviewer: decide appeals, add complaints; "
                   "readonly: look only.")
@click.option("--token", "with_token", is_flag=True, help="Also create a token and print it.")
@with_store
def users_add(store: SQLiteStore, name: str, role: str, with_token: bool) -> None:
    """Create an API user (optionally with a first token).

    \b
    Example:
      outguard users add alice --role admin --token
    """
    u = store.create_user(name, role, actor=actor())
    click.echo(f"user {u.name} ({u.role}) created")
    if with_token:
        new = store.create_token(name, label="first", actor=actor())
        click.echo(f"token {new.id}: {new.token}")
        click.echo("(shown once: keep it in a password manager or a secret store)")


@users.command("disable")
@click.argument("name")
@with_store
def users_disable(store: SQLiteStore, name: str) -> None:
    """Disable a user: their tokens stop working (within a minute in a running service).

    \b
    Example:
      outguard users disable alice
    """
    store.set_user_disabled(name, True, actor=actor())
    click.echo(f"user {name} disabled")


@users.command("enable")
@click.argument("name")
@with_store
def users_enable(store: SQLiteStore, name: str) -> None:
    """Enable a disabled user again.

    \b
    Example:
      outguard users enable alice
    """
    store.set_user_disabled(name, False, actor=actor())
    click.echo(f"user {name} enabled")


@click.group()
def tokens() -> None:
    """Create and revoke API tokens (Authorization: Bearer <token>).

    \b
    Example:
      outguard tokens create alice --label laptop
    """


@tokens.command("create")
@click.argument("user")
@click.option("--label", default="", help="What the token is for.")
@json_option
@with_store
def tokens_create(store: SQLiteStore, user: str, label: str, as_json: bool) -> None:
    """Create a token for a user and print it (it is stored hashed: shown this once).

    \b
    Example:
      outguard tokens create alice --label dashboard
    """
    new = store.create_token(user, label=label, actor=actor())
    if as_json:
        output({"id": new.id, "token": new.token, "user": new.user.name,
                "role": new.user.role}, True)
    else:
        click.echo(new.token)


@tokens.command("list")
@click.option("--user", default=None, help="Only this user's tokens.")
@json_option
@with_reader
def tokens_list(store: SQLiteStore, user: str | None, as_json: bool) -> None:
    """List API tokens: id, user, role, label, when created, and whether revoked (the
    secrets are not stored and cannot be shown; revoke by id).

    \b
    Example:
      outguard tokens list --user alice
    """
    from outguard.store.maintenance import list_tokens

    rows = [views.token(t) for t in list_tokens(store, user)]
    output(rows, as_json, ["id", "user", "role", "label", "created_at", "revoked"])


@tokens.command("revoke")
@click.argument("token_id")
@with_store
def tokens_revoke(store: SQLiteStore, token_id: str) -> None:
    """Revoke a token by its id (the part after og_ up to the next _).

    \b
    Example:
      outguard tokens revoke 3f2a9c1b7d4e
    """
    store.revoke_token(token_id, actor=actor())
    click.echo(f"token {token_id} revoked")
