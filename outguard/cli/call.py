"""``outguard call``: place a real test call through the PBX and print outguard's verdict
and the call's outcome: the quickest end-to-end check of a setup (see ``api.testcall``)."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import click

from outguard import dialplan_vars as dv
from outguard import views
from outguard.api.testcall import FORMATS, Target, find_call, place
from outguard.cli.common import (
    EXIT_BLOCKED,
    EXIT_NOT_FOUND,
    emit_json,
    existing_store,
    json_option,
    load_settings,
    store_options,
    translated,
)
from outguard.store import open_store as open_any_store


def _target(config_file: str | None, store_path: str | None, sandbox_name: str | None,
            pbx: str | None = None) -> Target:
    settings = load_settings(config_file, store_path)
    if sandbox_name is None:
        with translated():
            a = settings.ari_target(pbx)
        return Target(a.url, a.user, a.password, settings.store)
    from outguard import sandbox
    from outguard.demo import demo_settings

    with translated():
        inst = sandbox.load_instance(sandbox_name)
    store = store_path or (demo_settings(inst).store if sandbox_name == "demo" else settings.store)
    return Target(inst.ari_url, inst.ari_user, inst.ari_password, store)


@click.command("call")
@click.argument("number")
@click.option("--from", "account", required=True, help="The calling account (OUTGUARD_ACCOUNT).")
@click.option("--caller-id", default="", help="Caller ID to present.")
@click.option("--tenant", default="", help="OUTGUARD_TENANT (default: the account's).")
@click.option("--purpose", default="", help="OUTGUARD_PURPOSE.")
@click.option("--context", default="outguard-ari", show_default=True,
              help="The outbound context that screens (outguard-ari, outguard-agi ...).")
@click.option("--sandbox", "sandbox_name", default=None,
              help="Use a running sandbox's ARI (and, for demo, its store).")
@click.option("--pbx", default=None,
              help="Place it through this PBX's ARI (its [[ari]] pbx name; default: the "
                   "first).")
@click.option("--hold", type=float, default=None,
              help="Hang up this many seconds after the answer (default: the far end does).")
@click.option("--timeout", type=float, default=60.0, show_default=True,
              help="Give up after this many seconds.")
@click.option("--formats", default=FORMATS, show_default=True,
              help="Codecs the test caller offers (those the carrier trunk allows).")
@json_option
@store_options
def call(number: str, account: str, caller_id: str, tenant: str, purpose: str, context: str,
         sandbox_name: str | None, pbx: str | None, hold: float | None, timeout: float,
         formats: str, as_json: bool, config_file: str | None,
         store_path: str | None) -> None:
    """Place a test call through the PBX (ARI originate of Local/NUMBER@CONTEXT) and print
    outguard's verdict and the outcome. outguard must be serving.

    Exit code 0 when the call was allowed, 5 when blocked, 3 when outguard gave no verdict
    (not serving, or the context does not screen).

    \b
    Example:
      outguard call 13800138000 --from seat-01 --caller-id 01088886666 --sandbox demo
    """
    target = _target(config_file, store_path, sandbox_name, pbx)
    existing_store(target.store)  # the verdict is read from it: refuse before calling
    variables = {f"__{dv.ACCOUNT}": account}
    if tenant:
        variables[f"__{dv.TENANT}"] = tenant
    if purpose:
        variables[f"__{dv.PURPOSE}"] = purpose
    started = time.time()
    with translated():
        seen = asyncio.run(place(target, number, variables, context, caller_id, timeout, hold,
                                 formats))
        with open_any_store(target.store) as store:
            logged = find_call(store, seen["dialled"], started, want_outcome=True)
    body: dict[str, Any] = {"number": number, "account": account, "answered": seen["answered"],
                            "hangup_cause": seen["cause"], "hangup_cause_text": seen["cause_txt"],
                            "decision": views.call(logged) if logged else None}
    if as_json:
        emit_json(body)
    else:
        _print(body)
    if logged is None:
        sys.exit(EXIT_NOT_FOUND)
    if logged.call.verdict != "allow":
        sys.exit(EXIT_BLOCKED)


def _print(body: dict[str, Any]) -> None:
    d = body["decision"]
    if d is None:
        click.echo(f"no verdict from outguard for {body['number']} (is it serving, and does "
                   f"the context screen?); hangup cause {body['hangup_cause']} "
                   f"{body['hangup_cause_text']}".rstrip())
        return
    click.echo(f"{d['verdict'].upper()} {d['destination']} from {d['account']} "
               f"({d['tenant']}): reason {d['reason']}" + (f", rule {d['rule']}" if d["rule"] else ""))
    if d["verdict"] == "allow":
        talk = f"answered, talked {d['duration']:.1f} s" if d["answered_at"] else "not answered"
        click.echo(f"outcome: {talk}; hangup cause {d['cause']}")
    else:
        click.echo(f"hangup cause {body['hangup_cause']} {body['hangup_cause_text']}".rstrip())
    click.echo(f"decision {d['decision_id']} in {d['decision_us']} us")
