"""Cluster mode through the API: an instance whose Redis cannot answer starts, decides
by the caps' failure policy and says so in /health and /metrics; a dry run shows the
cluster's counts."""

from __future__ import annotations

from pathlib import Path

import time
import uuid

from outguard.callfacts import ChannelFacts
from outguard.cluster.caps import CallKeys, RedisCaps
from outguard.config import ClusterConfig
from outguard.screening import decide
from outguard.testing.servers import RedisServer
from tests.unit.api.conftest import start_api
from tests.waiting import eventually

UNREACHABLE = "redis://127.0.0.1:1/0"


async def test_an_instance_without_its_redis_starts_fails_its_caps_closed_and_says_so(
    tmp_path: Path,
) -> None:
    api = await start_api(tmp_path, cluster=ClusterConfig(redis=UNREACHABLE, timeout_ms=200))
    try:
        assert api.screener.reserves
        decision = await decide(api.screener, ChannelFacts(
            "ari", "ch-1", "PJSIP/agent-00000001", "13800138000", "01088886666",
            account="a1"), 1000)
        assert decision is not None and not decision.allowed
        assert decision.verdict.reason == "cap_store_unavailable"
        health = await api.json("GET", "/health", role=None)
        assert health["status"] == "degraded"
        assert any("cap store (Redis) unavailable" in r for r in health["reasons"])
        text = (await (await api.call("GET", "/metrics", role="readonly")).read()).decode()
        assert "outguard_cap_store_up 0.0" in text
        assert 'outguard_cap_store_fallbacks_total{verdict="blocked"} 1.0' in text
        assert "outguard_cap_store_reheld_total 0.0" in text

        async def waiting() -> str:  # the decision's event waits for Redis, kept
            body = await (await api.call("GET", "/metrics", role="readonly")).read()
            return body.decode() if "outguard_call_feed_backlog 1.0" in body.decode() else ""

        text = await eventually(waiting, "the call event in the feed's backlog")
        assert "outguard_call_feed_dropped_total 0.0" in text
        assert "outguard_call_feed_published_total 0.0" in text
    finally:
        await api.client.close()


async def test_a_dry_run_shows_the_calls_every_instance_counted(
    tmp_path: Path, redis_server: RedisServer,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    api = await start_api(tmp_path, cluster=ClusterConfig(redis=redis_server.url,
                                                          prefix=prefix))
    other = RedisCaps.from_url(redis_server.url, prefix=prefix, timeout_s=5)
    try:  # three calls of account a1 that another instance let through
        for i in range(3):
            await other.reserve(CallKeys(f"elsewhere-{i}", "t1", "a1", "+861088886666",
                                         f"+8613800138{i:03d}"), [], time.time())
        result = await api.json("POST", "/api/check", json={
            "number": "13800138000", "account": "a1", "caller_id": "01088886666"})
        [cap] = [o for o in result["rules"] if o["rule"] == "account_per_minute"]
        assert cap["figures"]["count"] == 3
    finally:
        await other.aclose()
        await api.client.close()
