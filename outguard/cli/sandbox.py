"""``outguard sandbox``: the real Asterisk 22 the demo and the tests run against."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from outguard import sandbox as sb
from outguard.testing import sipp

VIA = {"ari": "agent", "bridge": "agent-bridge", "agi": "agent-agi", "direct": "agent-direct",
       "native": "agent-native"}


def _fail(err: sb.SandboxError) -> click.ClickException:
    return click.ClickException(str(err))


@click.group()
def sandbox() -> None:
    """Build, start and stop the sandbox PBX (Asterisk 22 in a Debian sid chroot).

    The chroot is built once (about a minute) and cached in ~/.cache/outguard
    (OUTGUARD_CACHE overrides). Needs root.

    \b
    Example:
      outguard sandbox up && outguard sandbox status
    """


@sandbox.command()
@click.option("--rebuild", is_flag=True, help="Build the chroot again even if it is sound.")
def build(rebuild: bool) -> None:
    """Build the cached chroot with Asterisk if it is absent or broken.

    \b
    Example:
      outguard sandbox build
    """
    started = time.monotonic()
    try:
        root = sb.ensure_chroot(rebuild=rebuild)
    except sb.SandboxError as err:
        raise _fail(err) from err
    version = (root / sb.CHROOT_MARKER).read_text(encoding="utf-8").strip()
    click.echo(f"sandbox chroot: {root} ({version}), ready in {time.monotonic() - started:.1f} s")


@sandbox.command()
@click.option("--name", default="demo", show_default=True, help="Instance name.")
@click.option("--offset", default=0, show_default=True, help="Shift every port by this much.")
def up(name: str, offset: int) -> None:
    """Start (or restart) a sandbox Asterisk instance and wait until it is booted.

    \b
    Example:
      outguard sandbox up --name second --offset 200
    """
    try:
        box = sb.up(name, offset)
    except sb.SandboxError as err:
        raise _fail(err) from err
    p = box.inst.ports
    click.echo(
        f"sandbox {name!r} is up: SIP udp 127.0.0.1:{p.sip}, ARI {box.inst.ari_url} "
        f"(user {box.inst.ari_user}), AMI 127.0.0.1:{p.ami}, carrier expected at "
        f"127.0.0.1:{p.carrier}; FastAGI expected at 127.0.0.1:{p.agi}"
    )


@sandbox.command()
@click.option("--name", default="demo", show_default=True, help="Instance name.")
def down(name: str) -> None:
    """Stop a sandbox Asterisk instance.

    \b
    Example:
      outguard sandbox down --name demo
    """
    try:
        inst = sb.load_instance(name)
    except sb.SandboxError:
        click.echo(f"sandbox {name!r} is not running")
        return
    sb.Sandbox(inst).stop()
    click.echo(f"sandbox {name!r} stopped")


@sandbox.command()
@click.option("--name", default="demo", show_default=True, help="Instance name.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(name: str, as_json: bool) -> None:
    """Say whether a sandbox instance runs, with its ports and channel count.

    Exit code 0 when it runs, 3 when it does not.

    \b
    Example:
      outguard sandbox status --json
    """
    info: dict[str, object] = {"name": name, "running": False}
    try:
        inst = sb.load_instance(name)
    except sb.SandboxError:
        inst = None
    if inst is not None:
        box = sb.Sandbox(inst)
        if box.pid() is not None:
            info.update(running=True, ports=inst.to_json()["ports"], ari=inst.ari_url,
                        channels=box.channels())
    running = bool(info["running"])
    if as_json:
        click.echo(json.dumps(info))
    else:
        click.echo(" ".join(f"{k}={v}" for k, v in info.items()))
    if not running:
        raise SystemExit(3)


@sandbox.command()
@click.argument("number")
@click.option("--name", default="demo", show_default=True, help="Instance name.")
@click.option("--via", type=click.Choice(sorted(VIA)), default="ari", show_default=True,
              help="Which path: ARI continue, ARI bridge, FastAGI, no screening, or the "
                   "native AstDB blacklist.")
@click.option("--account", default="", help="Sent as OUTGUARD_ACCOUNT (default: the "
              "account the agent endpoint maps to).")
@click.option("--caller-id", default="01088886666", show_default=True,
              help="Caller ID the phone presents.")
@click.option("--count", default=1, show_default=True, help="How many calls, at 5 per second.")
@click.option("--hangup-after", type=int, default=None,
              help="The phone hangs up this many ms after the answer (default: the carrier "
                   "hangs up).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--store", "store_path", default=None, metavar="PATH",
              help="The serving outguard's store, where its verdicts are read (default: the "
                   "demo's store for --name demo, else the settings' store).")
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False),
              envvar="OUTGUARD_CONFIG", help="Settings file (TOML); OUTGUARD_CONFIG.")
def call(number: str, name: str, via: str, account: str, caller_id: str, count: int,
         hangup_after: int | None, as_json: bool, store_path: str | None,
         config_file: str | None) -> None:
    """Place test calls from the sandbox's SIPp agent phone and print what the phone saw
    (the SIP final response) and outguard's verdict, reason and rule for each call.

    Exit code 0 when every call got an answer (200), 5 when outguard blocked one, 1
    otherwise (another failure, or a call that got no verdict).

    \b
    Example:
      outguard sandbox call 13900139000 --via agi
    """
    started = time.time()
    try:
        inst = sb.load_instance(name)
        run = sipp.place_calls(
            inst, number, count=count, rate=5, from_user=VIA[via], account=account,
            caller_id=caller_id, agent_hangs_up_after_ms=hangup_after,
            timeout_s=30 + count,
        )
    except (sb.SandboxError, sipp.SippError) as err:
        raise click.ClickException(str(err)) from err
    calls = sorted(run.calls.values(), key=lambda c: c.number)
    screened = via not in ("direct", "native")
    verdicts = (_verdicts(inst, number, started, len(calls), store_path, config_file)
                if screened else [])
    rows: list[dict[str, Any]] = []
    for i, c in enumerate(calls):
        v = verdicts[i] if i < len(verdicts) else None
        rows.append({"call": c.number, "final": c.final,
                     "post_dial_delay_ms": c.post_dial_delay_ms, "ended_by": c.ended_by,
                     "verdict": v.verdict if v else None, "reason": v.reason if v else None,
                     "rule": v.rule if v else None})
    if as_json:
        click.echo(json.dumps(rows))
    else:
        for row in rows:
            line = (f"call {row['call']}: {row['final'] or 'no answer'} "
                    f"{sipp.REASONS.get(int(row['final'] or 0), '')}".rstrip())
            if row["verdict"] is not None:
                line += (f"; outguard: {row['verdict']}, reason {row['reason']}"
                         + (f", rule {row['rule']}" if row["rule"] else ""))
            elif screened:
                line += "; outguard: no verdict found in its store"
            click.echo(line)
    if any(row["verdict"] == "block" for row in rows):
        raise SystemExit(5)
    if not rows or any(row["final"] != 200 for row in rows):
        raise SystemExit(1)


def _verdicts(inst: sb.Instance, number: str, since: float, count: int,
              store_path: str | None, config_file: str | None) -> list[Any]:
    """outguard's decisions for the calls just placed to ``number``, oldest first, read
    from the serving outguard's store (empty when there is no store there)."""
    from pathlib import Path

    from outguard import config
    from outguard.demo import demo_settings
    from outguard.store.sqlite import SQLiteStore
    from rules.errors import NumberError
    from rules.numbers import normalise

    path = store_path or (demo_settings(inst).store if inst.name == "demo"
                          else config.load(config_file).store)
    if not Path(path).is_file():
        return []
    try:
        e164 = normalise(number, "CN")
    except (NumberError, ValueError):
        e164 = number
    deadline = time.monotonic() + 5.0
    with SQLiteStore(path) as store:
        while True:
            found = [c.call for c in store.iter_calls(since - 1)
                     if c.call.destination in (e164, number)]
            if len(found) >= count or time.monotonic() > deadline:
                return found[-count:]
            time.sleep(0.1)
