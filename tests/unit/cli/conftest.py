"""The CLI against a temporary store file, through click's CliRunner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from outguard.cli import cli
from outguard.store.sqlite import SQLiteStore
from tests.unit.api.conftest import POLICY


@dataclass
class Cli:
    store_path: Path
    runner: CliRunner

    def __call__(self, *args: str, code: int = 0, input: str | None = None) -> Result:
        """Run ``outguard ARGS --store PATH`` and check the exit code."""
        result = self.runner.invoke(cli, [*args, "--store", str(self.store_path)],
                                    input=input, env={"OUTGUARD_POLICY": str(POLICY)},
                                    catch_exceptions=False)
        assert result.exit_code == code, (result.exit_code, result.output)
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)

    def store(self) -> SQLiteStore:
        return SQLiteStore(self.store_path)


@pytest.fixture
def og(tmp_path: Path) -> Iterator[Cli]:
    """A store with tenant t1, account a1, a verified caller ID and a dnc list."""
    path = tmp_path / "outguard.db"
    with SQLiteStore(path) as store:
        store.create_tenant("t1", "Tenant one")
        store.create_account("a1", "t1", name="Seat one")
        store.upsert_caller_id("+861088886666", "t1", verification="verified")
        store.create_list("dnc", "dnc")
        store.add_entries("dnc", ["13900139000"])
    yield Cli(path, CliRunner())
