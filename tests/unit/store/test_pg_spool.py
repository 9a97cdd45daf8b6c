"""PostgreSQL unreachable: call-log rows are spooled durably on local disk and written when
the server takes connections again; a process killed meanwhile loses no acknowledged row."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from outguard.store import CallRecord
from outguard.store.postgres import PostgresStore
from outguard.testing.servers import PostgresServer

NOW = time.time()
CHILD = Path(__file__).with_name("pg_spool_child.py")


def _call(i: int) -> CallRecord:
    return CallRecord(f"d{i:06d}", f"PJSIP/1001-{i:08x}", "ari", "t1", "a1", "+8613800138000",
                      f"+86139{i % 7:08d}", "allow", "", "ok", (), 90, NOW + i * 1e-3)


def _wait(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


class Outage:
    """The database refuses every connection (as an unreachable server would)."""

    def __init__(self, pg: PostgresServer, name: str) -> None:
        self.pg, self.name = pg, name

    def start(self) -> None:
        self.pg.psql(f"ALTER DATABASE {self.name} WITH ALLOW_CONNECTIONS false")
        self.pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     f" WHERE datname = '{self.name}'")

    def end(self) -> None:
        self.pg.psql(f"ALTER DATABASE {self.name} WITH ALLOW_CONNECTIONS true")


@pytest.fixture
def pg_db(pg_server: PostgresServer) -> Iterator[tuple[str, Outage]]:
    name = f"s_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name)
    outage = Outage(pg_server, name)
    try:
        yield url, outage
    finally:
        outage.end()
        pg_server.drop_database(name)


def _count(url: str) -> int:
    store = PostgresStore(url)
    try:
        return len(list(store.iter_calls()))
    finally:
        store.close()


def test_rows_written_while_postgresql_refuses_are_spooled_then_written(
    pg_db: tuple[str, Outage], tmp_path: Path
) -> None:
    url, outage = pg_db
    store = PostgresStore(url, spool_dir=tmp_path / "spool", retry_s=0.05, batch_interval=0.01)
    try:
        for i in range(10):
            store.record_decision(_call(i))
        store.flush()
        outage.start()
        for i in range(10, 210):
            store.record_decision(_call(i))
        store.flush()  # acknowledged: on disk in the spool
        health = store.write_health()
        assert health["degraded"] and health["spool_rows"] == 200 and health["rows_dropped"] == 0
        outage.end()
        _wait(lambda: store.write_health()["degraded"] is None)
        assert store.write_health()["spool_rows"] == 0
    finally:
        store.close()
    assert _count(url) == 210


def test_kill_9_while_postgresql_is_down_loses_no_acknowledged_row(
    pg_db: tuple[str, Outage], tmp_path: Path
) -> None:
    url, outage = pg_db
    spool = tmp_path / "spool"
    with subprocess.Popen([sys.executable, str(CHILD), url, str(spool)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdin is not None and child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            outage.start()
            child.stdin.write("go\n")
            child.stdin.flush()
            acked = int(child.stdout.readline())  # rows the child's flush acknowledged
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
    assert acked == 300
    outage.end()
    store = PostgresStore(url, spool_dir=spool, retry_s=0.05)  # the restart
    try:
        _wait(lambda: store.write_health()["spool_rows"] == 0)
    finally:
        store.close()
    assert _count(url) == 300
