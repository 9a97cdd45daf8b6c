"""What the README shows is what the code accepts: every TOML block in it is a valid policy
(or settings file), and every `outguard ...` command it names exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from outguard import config
from outguard.cli import cli
from outguard.enforcement import validate_enforcement
from rules.policy import parse_policy

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```toml\n(.*?)```", README, re.S)
#: files a policy example names (a holiday calendar): ```toml file=NAME
FILES = dict(re.findall(r"```toml file=(\S+)\n(.*?)```", README, re.S))
COMMANDS = sorted({
    line.split("#")[0].strip()
    for block in re.findall(r"```sh\n(.*?)```", README, re.S)
    for line in block.splitlines()
    if line.split("#")[0].strip().split(" ")[:1] == ["outguard"]
} | set(re.findall(r"`(outguard [a-z][^`]*)`", README)))


def test_the_readme_has_examples_to_check() -> None:
    assert len(BLOCKS) >= 2 and len(COMMANDS) >= 10


@pytest.mark.parametrize("text", BLOCKS, ids=[f"toml-{i}" for i in range(len(BLOCKS))])
def test_every_toml_example_is_valid(text: str, tmp_path: Path) -> None:
    if text.lstrip().startswith(("[ari]", "store =")) or "password_env" in text:
        path = tmp_path / "settings.toml"
        path.write_text(text, encoding="utf-8")
        config.load(path, env={})
        return
    for name, body in FILES.items():
        (tmp_path / name).write_text(body, encoding="utf-8")
    policy = parse_policy(text, "README.md", tmp_path)
    validate_enforcement(policy)


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_file_example_is_a_valid_calendar(name: str) -> None:
    from rules.holidays import parse_calendar

    assert parse_calendar(FILES[name], name).years


def _resolve(words: list[str]) -> click.Command:
    command: click.Command = cli
    for word in words:
        if not isinstance(command, click.Group) or word.startswith("-"):
            break
        sub = command.commands.get(word)
        if sub is None:
            break
        command = sub
    return command


@pytest.mark.parametrize("line", COMMANDS)
def test_every_command_the_readme_names_exists_with_its_options(line: str) -> None:
    words = shlex.split(line.replace("...", "x"))[1:]
    command = _resolve(words)
    assert not isinstance(command, click.Group) or not words or command is not cli, line
    known = {opt for p in command.params for opt in getattr(p, "opts", [])}
    used = {w.split("=")[0] for w in words if w.startswith("--")}
    assert used <= known | {"--help"}, f"{line}: unknown options {used - known}"
