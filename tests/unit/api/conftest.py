"""The whole service app without Asterisk parts (Parts(ari=False, agi=False, ami=False)) on
a fresh SQLite file per test, behind aiohttp's test server, with one token per role."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from outguard.config import AmiConfig, ApiConfig, AriConfig, ClusterConfig, Settings
from outguard.server import SCREENER, STORE, Parts, build_app
from outguard.service import Screener
from outguard.store.aio import AsyncStore
from outguard.store import open_store

ROLES = ("admin", "reviewer", "readonly")
POLICY = Path(__file__).parent / "policy.toml"


def seed_tokens(path: Path | str) -> dict[str, str]:
    """One user and token per role, plus a small call centre (``path``: a file or a URL)."""
    tokens = {}
    with open_store(path) as store:
        for role in ROLES:
            store.create_user(f"{role}-user", role)
            tokens[role] = store.create_token(f"{role}-user").token
        store.create_tenant("t1", "Tenant one")
        store.create_account("a1", "t1", name="Seat one")
        store.upsert_caller_id("+861088886666", "t1", verification="verified")
        store.create_list("dnc", "dnc")
        store.add_entries("dnc", ["13900139000", "13900139001"])
    return tokens


@dataclass
class Api:
    client: TestClient[Any, Any]
    tokens: dict[str, str]
    settings: Settings

    @property
    def store(self) -> AsyncStore:
        return self.client.app[STORE]  # type: ignore[index]

    @property
    def screener(self) -> Screener:
        return self.client.app[SCREENER]  # type: ignore[index]

    def auth(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def call(self, method: str, path: str, role: str | None = "admin",
                   **kwargs: Any) -> ClientResponse:
        headers = dict(kwargs.pop("headers", {}))
        if role is not None:
            headers.update(self.auth(role))
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def json(self, method: str, path: str, role: str | None = "admin",
                   status: int = 200, **kwargs: Any) -> Any:
        response = await self.call(method, path, role, **kwargs)
        body = await response.json()
        assert response.status == status, body
        return body


async def start_api(tmp_path: Path, show_numbers: bool = False,
                    max_body_bytes: int = 64 * 1024 * 1024, store: str | None = None,
                    tokens: dict[str, str] | None = None,
                    cluster: ClusterConfig | None = None, policy: Path = POLICY) -> Api:
    """The app on a store seeded here, or (``tokens`` given) on one seeded before."""
    db = store or str(tmp_path / "outguard.db")
    tokens = tokens if tokens is not None else seed_tokens(db)
    spool = tempfile.mkdtemp(prefix="spool-", dir=tmp_path)  # one per instance, in tmp_path
    settings = Settings(store=str(db), default_tenant="t1", policy=str(policy), spool_dir=spool,
                        api=ApiConfig(show_numbers=show_numbers, max_body_bytes=max_body_bytes),
                        cluster=cluster or ClusterConfig(),
                        # cluster mode needs the PBX named (its targets are not started here)
                        ari=AriConfig(pbx="api-test" if cluster else "default"),
                        ami=AmiConfig(pbx="api-test" if cluster else "default"))
    app = build_app(settings, Parts(ari=False, agi=False, ami=False))
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    return Api(client, tokens, settings)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    running = await start_api(tmp_path)
    try:
        yield running
    finally:
        await running.client.close()
