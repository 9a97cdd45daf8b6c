"""``outguard serve`` and ``outguard demo``: run the service."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import click

from outguard import config, sandbox
from outguard.demo import demo_settings, seed, traps
from outguard.demo import reset as demo_reset
from outguard.errors import OutguardError
from outguard.live import DEFAULT_PBX
from outguard.server import DEMO_POLICY_WARNING, Parts, Started, split_part
from outguard.server import serve as run_server
from outguard.testing import sipp
from rules.errors import PolicyError

PART_NAMES = ("ari", "agi", "ami", "api")


def _parts(only: str) -> Parts:
    if not only:
        return Parts()
    chosen = {p.strip() for p in only.split(",") if p.strip()}
    unknown = chosen - set(PART_NAMES)
    if unknown:
        raise click.BadParameter(
            f"unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PART_NAMES)}"
        )
    return Parts(**{name: name in chosen for name in PART_NAMES})


def target_address(settings: config.Settings, part: str) -> str:
    """Where a part (``ari``, ``ami:pbx2``) connects to, for the banner."""
    kind, pbx = split_part(part)
    for a in settings.ari if kind == "ari" else ():
        if a.pbx == pbx:
            return a.url
    for m in settings.ami if kind == "ami" else ():
        if m.pbx == pbx:
            return f"{m.host}:{m.port}"
    return ""


def announce(started: Started, banner: str, settings: config.Settings,
             demo: bool = False) -> None:
    """The banner once serving, said loudly when a part is down or the demo policy runs:
    never "running" over a refused ARI or AMI login."""
    for name, why in started.down.items():
        url = target_address(settings, name)
        click.secho(f"ERROR: {name.upper()} {url} is NOT connected: {why}", fg="red",
                    bold=True, err=True)
    if started.down:
        click.secho(f"outguard is listening but NOT screening through "
                    f"{', '.join(n.upper() for n in started.down)} (it keeps retrying; "
                    f"calls meanwhile follow the dialplan's failure policy).", fg="red",
                    bold=True, err=True)
    else:
        click.echo(banner)
    if started.demo_policy and not demo:
        click.secho(f"WARNING: {DEMO_POLICY_WARNING}.", fg="yellow", bold=True, err=True)


def _run(settings: config.Settings, parts: Parts, banner: str, demo: bool = False) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await run_server(settings, parts,
                             ready=lambda started: announce(started, banner, settings, demo))
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(main())
    except OutguardError as err:
        raise click.ClickException(str(err)) from err
    except PolicyError as err:  # refused to start: every problem, one per line
        lines = "\n".join(str(i) for i in err.issues)
        raise click.ClickException(
            f"not starting: the policy has {len(err.issues)} problem(s)\n{lines}") from err


@click.command()
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False),
              envvar="OUTGUARD_CONFIG", help="Settings file (TOML); OUTGUARD_CONFIG.")
@click.option("--only", default="", help="Run only these parts: ari,agi,ami,api.")
@click.option("--policy", default=None, help="Policy file (overrides the settings file).")
@click.option("--store", default=None, help="SQLite file (overrides the settings file).")
def serve(config_file: str | None, only: str, policy: str | None, store: str | None) -> None:
    """Run outguard against an existing Asterisk: the ARI app, the FastAGI server, the
    AMI listener and the admin API/dashboard, in one process (or --only some of them).

    Passwords come from the environment (OUTGUARD_ARI_PASSWORD, OUTGUARD_AMI_PASSWORD),
    never from the settings file.

    Several PBXes: list one [[ari]] and/or [[ami]] target per PBX in the settings file,
    each with its pbx name (and password_env); each connects and reconnects on its own,
    and the call log, reports, /metrics and the live page name the PBX of every call.
    FastAGI PBXes name themselves in the AGI URL (agi://HOST:4573/screen?pbx=NAME).

    \b
    Example:
      OUTGUARD_ARI_PASSWORD=secret outguard serve -c /etc/outguard/outguard.toml
    """
    overrides: dict[str, object] = {}
    if policy:
        overrides["policy"] = policy
    if store:
        overrides["store"] = store
    try:
        settings = config.load(config_file, overrides=overrides)
    except config.ConfigError as err:
        raise click.ClickException(str(err)) from err
    aris = ", ".join(f"{a.url} app {a.app!r}" + ("" if a.pbx == DEFAULT_PBX else f" (pbx {a.pbx})")
                     for a in settings.ari if a.enabled)
    banner = (f"outguard is running: ARI {aris or 'off'}, "
              f"FastAGI {settings.agi.host}:{settings.agi.port}, "
              f"API http://{settings.api.host}:{settings.api.port}/")
    _run(settings, _parts(only), banner)


# -- the demo's admin token (admin surface, outguard/api) ------------------------------------

DEMO_ADMIN = "demo-admin"


def demo_admin_token(store_path: str) -> str:
    """The demo store's admin API token: created with the demo admin user on first run and
    kept next to the store (mode 0600), since the store keeps only its hash. A kept token
    the store no longer knows (a fresh store) is replaced."""
    from outguard.errors import AuthFailed, NotFound
    from outguard.store.sqlite import SQLiteStore

    path = Path(store_path).with_name("admin-token")
    with SQLiteStore(store_path) as store:
        if path.exists():
            kept = path.read_text(encoding="utf-8").strip()
            try:
                store.verify_token(kept)
                return kept
            except AuthFailed:
                pass
        try:
            store.get_user(DEMO_ADMIN)
        except NotFound:
            store.create_user(DEMO_ADMIN, "admin", actor="demo")
        token = store.create_token(DEMO_ADMIN, label="demo", actor="demo").token
    path.touch(mode=0o600)
    path.write_text(token + "\n", encoding="utf-8")
    return token


@click.command()
@click.option("--offset", default=0, show_default=True,
              help="Shift every port (sandbox and API) by this much.")
@click.option("--no-carrier", is_flag=True, help="Do not start the SIPp carrier.")
@click.option("--reset", is_flag=True,
              help="Start from a fresh demo call centre: delete the demo store (calls, "
                   "lists, suspensions) and its admin token first.")
def demo(offset: int, no_carrier: bool, reset: bool) -> None:
    """Run the embedded default: the sandbox PBX, an SQLite store with a demo call centre,
    the demo policy and a SIPp carrier that answers allowed calls. Ctrl-C stops it all.

    \b
    Example:
      outguard demo --reset
    """
    try:
        box = sandbox.up("demo", offset)
    except sandbox.SandboxError as err:
        raise click.ClickException(str(err)) from err
    inst = box.inst
    settings = demo_settings(inst)
    if reset:
        for path in demo_reset(settings.store):
            click.echo(f"removed {path}")
    os.environ["OUTGUARD_ARI_PASSWORD"] = inst.ari_password
    os.environ["OUTGUARD_AMI_PASSWORD"] = inst.ami_password
    seeded = seed(settings.store)
    token = demo_admin_token(settings.store)
    carrier = None if no_carrier else sipp.Carrier(inst, hold_ms=3000, limit_s=7 * 86400)
    p = inst.ports
    banner = "\n".join([
        "",
        "outguard demo is running (Ctrl-C stops it).",
        f"  dashboard and API  http://127.0.0.1:{settings.api.port}/",
        f"  admin API token    {token}",
        ("                     (sign in to the dashboard with it; curl -H "
         "'Authorization: Bearer <token>')"),
        f"  sandbox Asterisk   SIP udp 127.0.0.1:{p.sip}, ARI {inst.ari_url}, "
        f"AMI 127.0.0.1:{p.ami}",
        f"  FastAGI            127.0.0.1:{p.agi}",
        f"  store              {settings.store}"
        + (" (demo call centre created)" if seeded else ""),
        f"  carrier            SIPp answering on 127.0.0.1:{p.carrier}"
        if carrier else "  carrier            none (--no-carrier)",
        "",
        "Place a test call from another terminal:",
        "  outguard sandbox call 13800138000               # allowed (in calling hours)",
        "  outguard sandbox call 13900139000               # on the do-not-call list: 403",
        "  outguard sandbox call 13800138001 --via agi     # through FastAGI",
        "  outguard sandbox call 13800138002 --via bridge  # outguard bridges the call",
        "  outguard call 13800138000 --from seat-01 --caller-id 01088886666 --sandbox demo",
        "  outguard call 13800138000 --from seat-09 --caller-id 01088886666 --sandbox demo"
        "  # refused",
        "",
        "Refused on purpose (the demo's traps), and why:",
        *traps(),
        "The demo policy allows calls 09:00-12:00 and 13:30-20:00 Beijing time, Mon-Sat;",
        "outside those hours every call is refused with reason quiet_hours (SIP 480).",
        "It allows 2 calls a day to one number (a third: destination_cap, SIP 403) and",
        "10 calls a minute per seat (rate_cap, SIP 503).",
    ])
    try:
        if carrier is not None:
            carrier.__enter__()
        _run(settings, Parts(), banner, demo=True)
    finally:
        if carrier is not None:
            carrier.__exit__(None, None, None)
        box.stop()
        click.echo("demo stopped (sandbox PBX and carrier down)")
