"""Cluster mode while Redis cannot answer: the instance starts, decides by the caps'
failure policy, and says so in /health and /metrics."""

from __future__ import annotations

from pathlib import Path

from outguard.callfacts import ChannelFacts
from outguard.config import ClusterConfig
from outguard.screening import decide
from tests.unit.api.conftest import start_api

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
    finally:
        await api.client.close()
