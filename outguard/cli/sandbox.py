"""``outguard sandbox``: the real Asterisk 22 the demo and the tests run against."""

from __future__ import annotations

import json
import time

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
def call(number: str, name: str, via: str, account: str, caller_id: str, count: int,
         hangup_after: int | None, as_json: bool) -> None:
    """Place test calls from the sandbox's SIPp agent phone and print what the phone saw
    (the SIP final response). Exit code 0 when every call got an answer (200), 1 otherwise.

    \b
    Example:
      outguard sandbox call 13900139000 --via agi
    """
    try:
        inst = sb.load_instance(name)
        run = sipp.place_calls(
            inst, number, count=count, rate=5, from_user=VIA[via], account=account,
            caller_id=caller_id, agent_hangs_up_after_ms=hangup_after,
            timeout_s=30 + count,
        )
    except (sb.SandboxError, sipp.SippError) as err:
        raise click.ClickException(str(err)) from err
    rows = [
        {"call": c.number, "final": c.final, "post_dial_delay_ms": c.post_dial_delay_ms,
         "ended_by": c.ended_by}
        for c in sorted(run.calls.values(), key=lambda c: c.number)
    ]
    if as_json:
        click.echo(json.dumps(rows))
    else:
        for c in sorted(run.calls.values(), key=lambda c: c.number):
            click.echo(f"call {c.number}: {c.final or 'no answer'} "
                       f"{sipp.REASONS.get(c.final or 0, '')}".rstrip())
    if not rows or any(row["final"] != 200 for row in rows):
        raise SystemExit(1)
