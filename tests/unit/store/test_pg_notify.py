"""PostgreSQL: a change committed by any instance (or the CLI, or an import) reaches every
other instance's subscribers without polling (LISTEN/NOTIFY)."""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from outguard.store.postgres import PostgresStore
from outguard.testing.servers import PostgresServer


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    name = f"n_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name)
    yield url
    pg_server.drop_database(name)


def test_changes_by_another_instance_are_pushed_to_subscribers(pg_url: str, tmp_path: Path) -> None:
    here, there = PostgresStore(pg_url), PostgresStore(pg_url)
    try:
        assert here.wait_listening()
        heard: queue.Queue[int] = queue.Queue()
        here.subscribe(heard.put)
        there.create_list("dnc", "dnc")
        assert heard.get(timeout=5) == there.data_version()
        there.add_entries("dnc", ["13800138000"])
        assert heard.get(timeout=5) == there.data_version()
        numbers = tmp_path / "n.txt"
        numbers.write_text("13800138001\n13800138002\n")
        result = there.import_list("dnc", numbers)
        assert heard.get(timeout=5) == result.data_version == here.data_version()
        assert heard.empty()
    finally:
        here.close()
        there.close()


def test_the_listener_catches_up_after_losing_its_connection(
    pg_url: str, pg_server: PostgresServer
) -> None:
    here, there = PostgresStore(pg_url), PostgresStore(pg_url)
    try:
        assert here.wait_listening()
        heard: queue.Queue[int] = queue.Queue()
        here.subscribe(heard.put)
        pg_server.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                       " WHERE application_name = 'outguard-listen'")
        there.create_list("dnc", "dnc")  # may happen while nobody listens
        assert heard.get(timeout=10) == there.data_version()
    finally:
        here.close()
        there.close()
