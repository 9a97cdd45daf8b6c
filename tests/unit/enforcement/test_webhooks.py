"""Story: a webhook receiver on 127.0.0.1 sees every enforcement event once (after
de-duplicating retries by delivery id), each signed with HMAC-SHA256 over the body."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from outguard.enforcement.policy import WebhookSpec
from outguard.events import EnforcementAnnounced
from outguard.enforcement.webhooks import (
    DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, WebhookSender, verify,
)
from tests.unit.enforcement.conftest import Clock, EnforcerFactory, play_call

SECRET = "s3cret-for-tests"


class Receiver:
    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = 1  # answer the first delivery with a 500: it must be retried

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.deliveries.append((dict(request.headers), body))
        if self.fail_first:
            self.fail_first -= 1
            return web.Response(status=500)
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rx = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rx.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield rx, str(server.make_url("/hook"))
    finally:
        await server.close()


async def test_every_event_arrives_once_and_signed(
    make_enforcer: EnforcerFactory, clock: Clock, receiver: tuple[Receiver, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rx, url = receiver
    monkeypatch.setenv("OUTGUARD_TEST_HOOK_SECRET", SECRET)
    enforcer = await make_enforcer(f"""
[enforcement.triggers.two_complaints]
metric = "complaints"
scope = "account"
window = "7d"
at_least = 2

[enforcement.webhooks]
urls = ["{url}"]
secret_env = "OUTGUARD_TEST_HOOK_SECRET"
backoff_s = 0.01
""")
    play_call(enforcer, callee="+8613900000001")
    play_call(enforcer, callee="+8613900000002")
    for callee in ("13900000001", "13900000002"):
        await enforcer.add_complaint(callee, "13800000001", category="harassment",
                                     source="12321", actor="ops")
    await enforcer.evaluate()
    appeal = await enforcer.submit_appeal("account", "a1", text="we stopped", actor="a1")
    await enforcer.approve_appeal(appeal.id, reviewer="rita", decision="ok")
    await enforcer.webhooks.idle()

    seen: dict[str, dict[str, Any]] = {}
    for headers, body in rx.deliveries:
        assert verify(SECRET.encode(), body, headers[SIGNATURE_HEADER])
        assert not verify(b"wrong", body, headers[SIGNATURE_HEADER])
        event = json.loads(body)
        assert headers[DELIVERY_HEADER] == event["id"]
        assert headers[EVENT_HEADER] == event["type"]
        seen.setdefault(event["id"], event)
    assert len(rx.deliveries) == len(seen) + 1  # the one retry, same id
    types = sorted(e["type"] for e in seen.values())
    assert types == sorted(["complaint.added", "complaint.added", "suspension.created",
                            "appeal.submitted", "suspension.lifted", "appeal.approved"])
    created = next(e for e in seen.values() if e["type"] == "suspension.created")
    assert created["data"]["party_key"] == "a1"
    assert created["data"]["trigger"] == "two_complaints"
    assert enforcer.webhooks.stats.delivered == len(seen)


async def test_a_dead_receiver_is_given_up_on_and_never_blocks() -> None:
    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)

    sender = WebhookSender(WebhookSpec(urls=("http://127.0.0.1:9/hook",), max_attempts=3,
                                       backoff_s=0.5, queue_size=2, timeout_s=1),
                           sleep=no_sleep)
    assert sender.announce(EnforcementAnnounced("1", "x", "2026-12-02T00:00:00+00:00", {}))
    assert sender.announce(EnforcementAnnounced("2", "x", "2026-12-02T00:00:00+00:00", {}))
    assert not sender.announce(EnforcementAnnounced("3", "x", "2026-12-02T00:00:00+00:00", {}))  # full: dropped, not waited for
    sender.start()
    await sender.idle()
    await sender.stop()
    assert (sender.stats.failed, sender.stats.dropped, sender.stats.delivered) == (2, 1, 0)
    assert slept == [0.5, 1.0, 0.5, 1.0]
