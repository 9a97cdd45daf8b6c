"""The ``outguard`` command line. Each command group lives in its own module."""

from __future__ import annotations

import logging

import click

from outguard import logfmt
from outguard.cli.call import call
from outguard.cli.consent import consent
from outguard.cli.enforce import (
    appeals,
    complaints,
    disable,
    lift,
    risk,
    status,
    suspend,
    suspensions,
)
from outguard.cli import health as _health  # noqa: F401  (caller-ids health, tasks)
from outguard.cli.lists import lists
from outguard.cli.ops import backup, prune
from outguard.cli.parties import accounts, caller_ids, tenants, tokens, users
from outguard.cli.replay import policy_replay
from outguard.cli.sandbox import sandbox
from outguard.cli.screening import check, policy, report
from outguard.cli.serve import demo, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("--log-format", type=click.Choice(logfmt.FORMATS), default="text",
              show_default=True, envvar="OUTGUARD_LOG_FORMAT",
              help="Log lines as text or one JSON object per line; OUTGUARD_LOG_FORMAT.")
@click.version_option(package_name="outguard")
def cli(verbose: int, log_format: str) -> None:
    """outguard: outbound call screening for Asterisk.

    Admin commands work on the store file (--store, or the settings file given with
    -c/--config or OUTGUARD_CONFIG); a running service notices their changes within
    seconds. Exit codes: 0 ok, 1 error, 2 usage, 3 not found / not running, 4 conflict,
    5 blocked (check, call).

    \b
    Example:
      outguard sandbox up
    """
    logfmt.configure(logging.WARNING - 10 * min(verbose, 2), log_format)


policy.add_command(policy_replay)

for command in (sandbox, serve, demo, call, check, policy, report, lists, tenants, accounts,
                caller_ids, users, tokens, suspend, lift, disable, status, suspensions,
                appeals, complaints, risk, backup, prune, consent):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="outguard")
