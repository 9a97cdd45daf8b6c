"""/health and /metrics tell when the store refuses call-log writes; the rows wait in the
spool and reach the store once it takes writes again."""

from __future__ import annotations

from pathlib import Path

from outguard import probes
from outguard.callfacts import ChannelFacts
from outguard.store.sqlite import SQLiteStore
from tests.unit.api.conftest import Api


def refused() -> float:
    return float(probes.STORE_WRITE_ERRORS.labels("store_refused")._value.get())


def _facts(i: int) -> ChannelFacts:
    return ChannelFacts(adapter="ari", channel_id=f"ch-{i}", channel_name="PJSIP/a1-00000001",
                        dialed=f"1380013{i:04d}", caller_id="01088886666", account="a1")


async def test_health_and_metrics_say_the_store_refuses_writes(api: Api, tmp_path: Path) -> None:
    body = await api.json("GET", "/health", role=None)
    assert body["status"] == "ok" and body["reasons"] == []
    refused_before = refused()
    inner = api.store.store
    assert isinstance(inner, SQLiteStore)
    inner.writer.retry_s = 3600
    inner.writer.submit(lambda conn: conn.execute("PRAGMA query_only = 1")).result()
    decisions = [api.screener.screen(_facts(i)) for i in range(5)]
    await api.store.flush_async()

    body = await api.json("GET", "/health", role=None)
    assert body["status"] == "degraded"
    assert "store refuses call-log writes (attempt to write a readonly database)" in body["reasons"][0]
    assert body["store"]["spool_rows"] >= 5
    text = await (await api.call("GET", "/metrics")).text()
    assert 'outguard_store_write_errors_total{kind="store_refused"}' in text
    assert refused() == refused_before + 1
    assert "outguard_store_degraded 1" in text
    assert "outguard_store_rows_dropped_total 0.0" in text
    assert f"outguard_store_spool_rows {float(body['store']['spool_rows'])}" in text

    await api.store.run(lambda: inner.writer.retry_now().result(10))  # a fresh connection
    body = await api.json("GET", "/health", role=None)
    assert body["status"] == "ok" and body["store"]["spool_rows"] == 0
    for d in decisions:
        assert (await api.store.get_call(d.id)).call.decision_id == d.id
