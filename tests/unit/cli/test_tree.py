"""Every command of the click tree has help text and a documented example."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from outguard.cli import cli


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = list(walk(cli))


def test_the_tree_has_the_admin_commands() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    for expected in ("call", "check", "policy validate", "policy show", "policy reload",
                     "lists import", "lists export", "lists add", "lists remove", "lists show",
                     "tenants list", "accounts add", "caller-ids set", "suspend", "lift",
                     "disable", "appeals list", "appeals show", "appeals approve",
                     "appeals reject", "complaints add", "complaints import", "report",
                     "users add", "tokens create", "sandbox up", "serve", "demo"):
        assert expected in names, expected


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_command_has_help_and_an_example(path: tuple[str, ...], command: click.Command) -> None:
    assert command.help and len(command.help.strip()) > 20, path
    assert "Example:" in command.help, path
    example = command.help.split("Example:", 1)[1].strip().splitlines()[0].strip()
    assert example.startswith("outguard " + " ".join(path[:1])) or "outguard" in example, example
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output
    for param in command.params:
        if isinstance(param, click.Option) and param.name not in ("help",):
            assert param.help, (path, param.name)
