"""The service on a PostgreSQL store (``store = "postgresql://..."``): the same API, the
same decisions, the call log and list changes in PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from outguard.store.postgres import PostgresStore
from outguard.testing.servers import PostgresServer
from tests.unit.api.conftest import Api, start_api
from tests.unit.api.test_screening_routes import place


@pytest.fixture
async def pg_api(tmp_path: Path, pg_server: PostgresServer) -> AsyncIterator[Api]:
    name = f"api_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name)
    running = await start_api(tmp_path, store=url)
    try:
        yield running
    finally:
        await running.client.close()
        pg_server.drop_database(name)


async def test_the_service_decides_and_logs_on_postgresql(pg_api: Api) -> None:
    assert isinstance(pg_api.store.store, PostgresStore)
    blocked = place(pg_api, "13900139000")
    allowed = place(pg_api, "13800138000", answer_s=12)
    assert (blocked.allowed, allowed.allowed) == (False, True)
    await pg_api.store.flush_async()
    calls = await pg_api.json("GET", "/api/calls", role="readonly")
    assert {c["verdict"] for c in calls} == {"allow", "block"}


async def test_a_list_change_through_the_api_reaches_the_snapshot(pg_api: Api) -> None:
    assert place(pg_api, "13800138005").allowed
    await pg_api.json("POST", "/api/lists/dnc/entries", json={"numbers": ["13800138005"]})
    await pg_api.screener.rebuild()
    assert not place(pg_api, "13800138005").allowed


async def test_a_change_made_through_one_instance_blocks_the_next_call_on_another(
    tmp_path: Path, pg_server: PostgresServer
) -> None:
    """Two outguard services on one PostgreSQL store: a list entry added through one is
    pushed to the other (LISTEN/NOTIFY; polling stays the fallback) and its snapshot rebuilt."""
    name = f"api_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name)
    one = await start_api(tmp_path, store=url)
    two = await start_api(tmp_path, store=url, tokens=one.tokens)
    try:
        assert place(two, "13800138007").allowed
        rebuilt = asyncio.Event()
        original = two.screener.rebuild

        async def watched() -> object:
            snap = await original()
            rebuilt.set()
            return snap

        two.screener.rebuild = watched  # type: ignore[method-assign]
        await one.json("POST", "/api/lists/dnc/entries", json={"numbers": ["13800138007"]})
        await asyncio.wait_for(rebuilt.wait(), 5)
        assert not place(two, "13800138007").allowed
    finally:
        await one.client.close()
        await two.client.close()
        pg_server.drop_database(name)
