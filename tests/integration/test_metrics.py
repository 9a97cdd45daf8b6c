"""/metrics of an outguard connected to the real Asterisk (ARI, FastAGI, AMI): calls
through both adapters show up as round trips, and every metric the shipped alert rules
and Grafana dashboard (deploy/) query is one this outguard really exports."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from outguard.config import ApiConfig
from outguard.server import Parts
from outguard.testing import sipp
from tests.integration.conftest import Running, settings_for, start_outguard
from tests.integration.webdriver import free_port
from tests.unit.deploy.test_monitoring import DASHBOARD, RULES, dashboard_queries

pytestmark = pytest.mark.integration

ALLOWED = "13800138000"
#: PromQL words that look like metric names but are not
PROMQL = {"sum", "by", "rate", "increase", "histogram_quantile", "offset", "le", "instance",
          "job", "part", "verdict", "reason", "mode", "adapter", "kind", "interface",
          "party_kind", "result", "type", "label_values", "version", "python", "without",
          "channel"}


@pytest.fixture
async def scraped(clean_pbx, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Running, str, str]]:
    port = free_port()
    settings = replace(settings_for(clean_pbx, tmp_path / "outguard.db"),
                       api=ApiConfig(port=port))
    runner = await start_outguard(clean_pbx, settings, Parts(), monkeypatch)
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        og = Running(runner.app, settings, clean_pbx)
        await og.store.create_user("prometheus", "readonly")
        token = (await og.store.create_token("prometheus")).token
        yield og, f"http://127.0.0.1:{port}/metrics", token
    finally:
        await runner.cleanup()


async def scrape(url: str, token: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    async with aiohttp.ClientSession() as http, http.get(
            url, headers={"Authorization": f"Bearer {token}"}) as reply:
        assert reply.status == 200
        text = await reply.text()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):  # series or not
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        for suffix in suffixes:
            samples[name + suffix] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def queried_metrics() -> set[str]:
    exprs = re.findall(r"expr: (.+)", RULES.read_text()) + dashboard_queries()
    names: set[str] = set()
    for expr in exprs:
        bare = re.sub(r"\{[^}]*\}|\"[^\"]*\"|\[[^\]]*\]", "", expr)
        names |= {w for w in re.findall(r"(?<!\w)[a-z_][a-z0-9_]*", bare) if w not in PROMQL}
    return names - {"up"}  # Prometheus's own, per scrape


async def test_every_metric_the_alerts_and_dashboard_query_is_exported(
        scraped: tuple[Running, str, str]) -> None:
    og, url, token = scraped
    with sipp.Carrier(og.pbx.inst, hold_ms=300):
        ari = await og.call(ALLOWED, account="a1")
        agi = await og.call(ALLOWED, account="a1", from_user="agent-agi")
    assert (ari.only.final, agi.only.final) == (200, 200)
    await og.settle()
    m = await scrape(url, token)

    queried = queried_metrics()
    assert {"outguard_connected", "outguard_decisions_total",
            "outguard_screening_failures_total", "outguard_snapshot_age_seconds",
            "outguard_store_write_errors_total", "process_cpu_seconds_total"} <= queried
    missing = sorted(name for name in queried if name not in m)
    assert not missing, f"{DASHBOARD.name}/{RULES.name} query metrics outguard lacks: {missing}"

    assert m["outguard_connected"] == {(("part", "agi"), ("pbx", "")): 1.0,
                                       (("part", "ami"), ("pbx", "default")): 1.0,
                                       (("part", "ari"), ("pbx", "default")): 1.0}
    ok = (("pbx", "default"), ("reason", "ok"), ("verdict", "allow"))
    assert m["outguard_decisions_total"][ok] == 2
    rt = m["outguard_asterisk_roundtrip_seconds_count"]
    interfaces = {dict(labels)["interface"] for labels in rt}
    assert {"ari", "agi"} <= interfaces, rt
    assert rt[(("interface", "ari"), ("operation", "POST channels/continue"))] >= 1
    assert set(m["outguard_reconnects_total"]) == {(("part", "ami"), ("pbx", "default")),
                                                   (("part", "ari"), ("pbx", "default"))}
    answered = (("pbx", "default"), ("result", "answered"))
    assert m["outguard_call_outcomes_total"][answered] == 2
