"""``outguard consent``: the consent ledger (grants, revocations, their history) and the
reassigned-number results that void older consent."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from outguard import consent as consent_view
from outguard.cli.common import (
    CliError,
    EXIT_USAGE,
    actor,
    current_settings,
    e164,
    emit_json,
    json_option,
    output,
    policy_of,
    table,
    with_reader,
    with_store,
)
from outguard.cli.parties import _date
from outguard.store.consent import ConsentInput
from outguard.store.consent_files import read_consents, read_reassigned
from outguard.store.sqlite import SQLiteStore
from rules.model import Purpose

_PURPOSES = click.Choice([p.value for p in Purpose])


@click.group()
def consent() -> None:
    """Record consent and its revocation, with provenance, and show a number's history.

    A revocation takes effect on the next call (running services rebuild their snapshot)
    and puts the number on optout-<tenant>; a refusal of a +86 number also puts it on
    cn_refused for 183 days.

    \b
    Example:
      outguard consent revoke 13800138000 --tenant acme --source call --evidence "rec-991"
    """


def _region() -> str:
    return policy_of(current_settings()).default_region


def _record(store: SQLiteStore, item: ConsentInput, as_json: bool) -> None:
    record, listed = store.record_consent(item, region=_region(), actor=actor())
    body = {**record.as_dict(), "listed_on": listed}
    output(body, as_json)


@consent.command("grant")
@click.argument("number")
@click.option("--tenant", required=True, help="Who the person consented to.")
@click.option("--list", "list_name", default="consent", show_default=True,
              help="The consent list whose `exempts` this consent carries.")
@click.option("--campaign", default=None, help="Only this campaign (default: all).")
@click.option("--purpose", type=_PURPOSES, default=None, help="Only this purpose (default: all).")
@click.option("--source", required=True, help="How it was given: web_form, ivr, call, sms, letter ...")
@click.option("--evidence", default="", help="Where the proof is (recording id, form id ...).")
@click.option("--at", "at_text", default=None, help="When it was given (ISO; default now).")
@click.option("--expires", default=None, help="When it lapses (ISO date or time).")
@json_option
@with_store
def consent_grant(store: SQLiteStore, number: str, tenant: str, list_name: str,
                  campaign: str | None, purpose: str | None, source: str, evidence: str,
                  at_text: str | None, expires: str | None, as_json: bool) -> None:
    """Record a consent (it exempts the number from the rules its list's `exempts` names,
    for calls of this tenant, campaign and purpose only).

    \b
    Example:
      outguard consent grant 13800138000 --tenant acme --purpose marketing \\
          --source web_form --evidence form-0042 --expires 2027-11-02
    """
    _record(store, ConsentInput(
        number=number, action="grant", source=source, channel="cli", tenant=tenant,
        campaign=campaign, purpose=purpose, list_name=list_name, evidence=evidence,
        at=_date(at_text), expires_at=_date(expires)), as_json)


@consent.command("revoke")
@click.argument("number")
@click.option("--tenant", default=None, help="Whose consent ends (default: every tenant's).")
@click.option("--campaign", default=None, help="Only this campaign's consent.")
@click.option("--purpose", type=_PURPOSES, default=None, help="Only this purpose's consent.")
@click.option("--source", required=True,
              help="How the person refused: call, ivr, sms, email, letter, in_person ...")
@click.option("--evidence", default="", help="Where the proof is.")
@click.option("--at", "at_text", default=None, help="When they refused (ISO; default now).")
@json_option
@with_store
def consent_revoke(store: SQLiteStore, number: str, tenant: str | None, campaign: str | None,
                   purpose: str | None, source: str, evidence: str, at_text: str | None,
                   as_json: bool) -> None:
    """Record a revocation of consent, made by any reasonable means (FCC 2024). Without
    --campaign/--purpose the number also goes on optout-<tenant>; a +86 number on
    cn_refused for 183 days.

    \b
    Example:
      outguard consent revoke 13800138000 --tenant acme --source call --evidence rec-991
    """
    _record(store, ConsentInput(
        number=number, action="revoke", source=source, channel="cli", tenant=tenant,
        campaign=campaign, purpose=purpose, evidence=evidence, at=_date(at_text)), as_json)


@consent.command("show")
@click.argument("number")
@json_option
@with_reader
def consent_show(store: SQLiteStore, number: str, as_json: bool) -> None:
    """A number's consent history, the consents in force, those a reassigned number's
    disconnect date voids, and the lists it is on.

    \b
    Example:
      outguard consent show 13800138000
    """
    body = consent_view.summary(store, e164(number), datetime.now(UTC))
    if as_json:
        emit_json(body)
        return
    click.echo(f"{body['number']}: {len(body['in_force'])} consent(s) in force")
    for grant in body["void"]:
        click.echo(f"void: consent #{grant['id']} (tenant {grant['tenant']}, given "
                   f"{grant['given_at']}): the number was disconnected on "
                   f"{grant['disconnected_at']}, after it was given (reassigned)")
    click.echo("history:")
    table(body["history"], ["id", "at", "action", "tenant", "campaign", "purpose", "list",
                            "source", "channel", "evidence", "expires_at", "actor"])
    click.echo("lists:")
    table(body["lists"], ["list", "source", "reason", "created_at", "expires_at", "expired",
                          "disconnected_at"])


@consent.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--list", "list_name", default="consent", show_default=True,
              help="Consent list for grant rows that name none.")
@json_option
@with_store
def consent_import(store: SQLiteStore, file: str, list_name: str, as_json: bool) -> None:
    """Record grants and revocations from a CSV, all or nothing (header: action, number,
    source[, tenant, campaign, purpose, list, evidence, at, expires_at]); every bad line
    is reported with its line number.

    \b
    Example:
      outguard consent import opt-outs.csv
    """
    items = read_consents(file, region=_region(), default_list=list_name)
    ids = store.import_consents(items, actor=actor())
    output({"file": file, "recorded": len(ids),
            "grants": sum(i.action == "grant" for i in items),
            "revocations": sum(i.action == "revoke" for i in items)}, as_json)


@consent.command("reassigned")
@click.argument("list_name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@json_option
@with_store
def consent_reassigned(store: SQLiteStore, list_name: str, file: str, as_json: bool) -> None:
    """Import reassigned-number results (FCC Reassigned Numbers Database) into a list of
    kind reassigned: consent given before a number's disconnect date is void. CSV header
    `number,disconnected`, or the RND's `number,date,result` (only `yes` rows kept).

    \b
    Example:
      outguard consent reassigned rnd rnd-results-2026-12.csv
    """
    rows = read_reassigned(file, region=_region())
    if not rows and not as_json:
        raise CliError(f"{file}: no reassigned numbers in the file", EXIT_USAGE)
    count = store.add_reassigned(list_name, rows, actor=actor())
    output({"list": list_name, "file": file, "numbers": count}, as_json)
