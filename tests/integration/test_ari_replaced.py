"""Another ARI client registers outguard's Stasis application on the sandbox Asterisk:
Asterisk sends outguard ``ApplicationReplaced`` and the calls to the other client; outguard
says so (log, /health, /metrics figures), stands aside rather than taking the calls back
and forth, and registers again once the other client has gone."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from outguard.testing import sipp
from tests.integration.block_reasons import ALLOWED
from tests.integration.conftest import Running
from tests.integration.test_cluster_faults import health_of
from tests.waiting import eventually

pytestmark = pytest.mark.integration


class OtherClient:
    """A second ARI client on outguard's application name: it refuses every call it gets
    (hangs it up with cause 21), and records the events it receives."""

    def __init__(self, og: Running) -> None:
        inst = og.pbx.inst
        self.base = inst.ari_url.rstrip("/")
        self.app = inst.app
        self.headers = {"Authorization": aiohttp.encode_basic_auth(inst.ari_user,
                                                                   inst.ari_password)}
        self.kinds: list[str] = []
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> OtherClient:
        self.http = aiohttp.ClientSession(headers=self.headers)
        self.ws = await self.http.ws_connect(self.base.replace("http", "ws", 1) + "/events",
                                             params={"app": self.app})
        self.task = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        assert self.ws is not None and self.http is not None
        async for message in self.ws:
            event: dict[str, Any] = json.loads(message.data)
            self.kinds.append(str(event.get("type")))
            if event.get("type") == "StasisStart":
                cid = event["channel"]["id"]
                async with self.http.delete(f"{self.base}/channels/{cid}",
                                            params={"reason_code": "21"}):
                    pass

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        if self.http is not None:
            await self.http.close()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def test_an_application_registered_by_another_client_is_reported_and_not_fought_over(
    outguard: Running, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    stasis = outguard.stasis
    stasis.replaced.poll_s = 0.1
    checks = 0
    listed = stasis.client.application

    async def counted() -> dict[str, Any]:
        nonlocal checks
        checks += 1
        return await listed()

    monkeypatch.setattr(stasis.client, "application", counted)
    async with OtherClient(outguard) as other:
        await eventually(lambda: bool(stasis.replaced.problem), "ApplicationReplaced seen")
        assert not stasis.connected and stasis.replaced.times == 1
        body = await health_of(outguard.app)
        assert body["status"] == "degraded"
        (reason,) = [r for r in body["reasons"] if "ApplicationReplaced" in r]
        assert f"pbx {stasis.pbx}:" in reason
        assert repr(other.app) in reason and stasis.client.base in reason
        assert any(r.levelname == "ERROR" and "stands aside" in r.getMessage()
                   for r in caplog.records)
        await eventually(lambda: checks >= 3, "outguard checking the application, held")
        run = await outguard.call(ALLOWED, timeout_s=15)  # goes to the other client
        assert run.only.final == 403
        assert "StasisStart" in other.kinds and "ApplicationReplaced" not in other.kinds
        assert stasis.replaced.times == 1 and not stasis.connected  # never took it back
    await eventually(lambda: stasis.connected and not stasis.replaced.problem,
                     "outguard registered again once the other client left")
    with sipp.Carrier(outguard.pbx.inst, hold_ms=200):
        run = await outguard.call(ALLOWED, account="a1")
    assert run.only.final == 200
    calls = await outguard.logged()
    assert [c.call.verdict for c in calls] == ["allow"]  # only the call outguard got
    assert (await health_of(outguard.app))["status"] == "ok"
