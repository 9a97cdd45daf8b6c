"""The ``outguard`` command line. Each command group lives in its own module."""

from __future__ import annotations

import logging

import click

from outguard.cli.sandbox import sandbox
from outguard.cli.serve import demo, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="outguard")
def cli(verbose: int) -> None:
    """outguard: outbound call screening for Asterisk.

    \b
    Example:
      outguard sandbox up
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


cli.add_command(sandbox)
cli.add_command(serve)
cli.add_command(demo)


def main() -> None:
    cli(prog_name="outguard")
