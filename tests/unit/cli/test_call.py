"""``outguard call`` against a protocol-level fake ARI (REST + events WebSocket) that
plays outguard's part too: it writes the decision for the dialled half to the call log."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner

from outguard.cli import cli
from outguard.store.base import CallRecord
from outguard.store.sqlite import SQLiteStore

BLOCKED = "13900139000"


class FakeAri:
    """Answers originate like Asterisk would for Local/NUMBER@outguard-ari."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.originated: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_get("/ari/events", self.events)
        self.app.router.add_post("/ari/channels", self.originate)
        self.app.router.add_post("/ari/applications/{app}/subscription", self.subscribe)
        self.app.router.add_delete("/ari/channels/{id}", self.hangup)

    async def events(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets[request.query["app"]] = ws
        async for message in ws:
            if message.type == WSMsgType.CLOSE:
                break
        return ws

    async def subscribe(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def hangup(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def originate(self, request: web.Request) -> web.Response:
        params, body = dict(request.query), await request.json()
        self.originated.append({**params, "variables": body["variables"]})
        asyncio.get_running_loop().create_task(self.play(params, body["variables"]))
        return web.json_response({"id": params["channelId"]})

    async def play(self, params: dict[str, str], variables: dict[str, str]) -> None:
        number = params["endpoint"].split("/")[1].split("@")[0]
        allowed = number != BLOCKED
        caller, dialled = params["channelId"], params["otherChannelId"]
        await asyncio.to_thread(self.log, dialled, number, variables["__OUTGUARD_ACCOUNT"], allowed)
        ws = self.sockets[params["app"]]
        cause = 16 if allowed else 21
        if allowed:
            await ws.send_str(json.dumps({"type": "StasisStart", "channel": {"id": caller}}))
            await asyncio.sleep(0.05)
        for cid in (dialled, caller):
            await ws.send_str(json.dumps({"type": "ChannelDestroyed", "channel": {"id": cid},
                                          "cause": cause, "cause_txt": "x"}))

    def log(self, channel: str, number: str, account: str, allowed: bool) -> None:
        now = time.time()
        with SQLiteStore(self.db) as store:
            store.record_decision(CallRecord(
                "d-" + channel, channel, "ari", "t1", account, "+861088886666", "+86" + number,
                "allow" if allowed else "block", "" if allowed else "dnc",
                "ok" if allowed else "dnc_listed", (), 12, now))
            store.record_outcome("d-" + channel, answered_at=now if allowed else None,
                                 ended_at=now + 1, duration=1.0 if allowed else 0.0,
                                 cause=16 if allowed else 21)
            store.flush()


async def run_call(tmp_path: Path, number: str, *extra: str) -> tuple[Any, FakeAri]:
    db = tmp_path / "outguard.db"
    SQLiteStore(db).close()
    fake = FakeAri(db)
    server = TestServer(fake.app)
    await server.start_server()
    try:
        env = {"OUTGUARD_ARI_URL": str(server.make_url("/ari"))}
        result = await asyncio.to_thread(
            CliRunner().invoke, cli,
            ["call", number, "--from", "seat-01", "--store", str(db), *extra], env=env)
    finally:
        await server.close()
    return result, fake


async def test_an_allowed_call_prints_the_verdict_and_outcome(tmp_path: Path) -> None:
    result, fake = await run_call(tmp_path, "13800138000", "--caller-id", "01088886666")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ALLOW +8613800138000 from seat-01")
    assert "answered, talked 1.0 s" in result.output
    (sent,) = fake.originated
    assert sent["endpoint"] == "Local/13800138000@outguard-ari"
    assert sent["variables"] == {"__OUTGUARD_ACCOUNT": "seat-01"}
    assert sent["callerId"] == "01088886666"


async def test_a_blocked_call_exits_5_with_the_reason(tmp_path: Path) -> None:
    result, _ = await run_call(tmp_path, BLOCKED, "--json", "--context", "outguard-agi")
    assert result.exit_code == 5, result.output
    body = json.loads(result.stdout)
    assert body["decision"]["reason"] == "dnc_listed" and body["hangup_cause"] == 21


async def test_no_ari_means_exit_1_with_the_reason(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "x.db").close()
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["call", "13800138000", "--from", "a", "--store",
                                  str(tmp_path / "x.db"), "--timeout", "3"],
        env={"OUTGUARD_ARI_URL": "http://127.0.0.1:9/ari"})
    assert result.exit_code == 1, result.output
    assert "ARI" in result.output


async def test_no_decision_in_the_log_means_exit_3(tmp_path: Path) -> None:
    db = tmp_path / "outguard.db"
    SQLiteStore(db).close()
    fake = FakeAri(db)
    fake.log = lambda *args: None  # type: ignore[method-assign]  # outguard is not serving
    server = TestServer(fake.app)
    await server.start_server()
    try:
        result = await asyncio.to_thread(
            CliRunner().invoke, cli, ["call", "13800138000", "--from", "a", "--store", str(db)],
            env={"OUTGUARD_ARI_URL": str(server.make_url("/ari"))})
    finally:
        await server.close()
    assert result.exit_code == 3, result.output
    assert "no verdict from outguard" in result.output
