"""Dry run, call log, reports, policy, stats, audit, the live stream, /metrics and the
OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from aiohttp import web

from outguard.api.context import COLLECTOR
from outguard.api.core import ROUTES
from outguard.callfacts import ChannelFacts
from outguard.config import AriConfig
from outguard.service import Decision
from tests.unit.api.conftest import POLICY, Api


async def collected(api: Api, decisions: int, timeout_s: float = 10.0) -> None:
    """Wait until the metrics collector (fed by the event hub) has counted the decisions."""
    collector = api.client.app[COLLECTOR]  # type: ignore[index]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while collector.latency_count < decisions:
        assert asyncio.get_running_loop().time() < deadline, "the collector fell behind"
        await asyncio.sleep(0.01)


def place(api: Api, number: str, *, answer_s: float | None = None,
          account: str = "a1") -> Decision:
    """A call through the real hot path, answered for ``answer_s`` seconds if given."""
    facts = ChannelFacts("ari", f"ch-{number}", "PJSIP/agent-00000001", number, "01088886666",
                         account=account)
    decision = api.screener.screen(facts)
    if decision.allowed:
        if answer_s is not None:
            answered = api.screener.clock() - 60  # every end in the past, never the future
            api.screener.answered(decision.id, at=answered)
            api.screener.ended(decision.id, cause=16, at=answered + answer_s)
        else:
            api.screener.ended(decision.id, cause=19)
    return decision


async def test_check_explains_a_blocked_number_rule_by_rule(api: Api) -> None:
    body = await api.json("POST", "/api/check", role="readonly", json={
        "number": "13900139000", "account": "a1", "caller_id": "01088886666"})
    assert (body["verdict"], body["rule"], body["reason"]) == ("block", "dnc", "dnc_listed")
    assert [r["rule"] for r in body["rules"]][:3] == ["destination_format", "party_status", "dnc"]
    assert [r["outcome"] for r in body["rules"]][:3] == ["passed", "passed", "matched"]
    assert body["attempt"]["tenant"] == "t1"
    assert body["attempt"]["destination"] == "139****9000"
    assert api.screener.stats.decisions == 0  # a dry run counts nothing


async def test_check_allows_and_refuses_bad_input(api: Api) -> None:
    body = await api.json("POST", "/api/check", json={
        "number": "13800138000", "account": "a1", "at": "10:30", "purpose": "service"})
    assert body["verdict"] == "allow" and body["reason"] == "ok"
    assert body["attempt"]["at"].endswith("+08:00")
    bad = await api.json("POST", "/api/check", status=400,
                         json={"number": "1", "account": "a1", "purpose": "fun"})
    assert bad["field"] == "purpose"
    assert (await api.json("POST", "/api/check", status=400, json={"account": "a1"}))["field"] == "number"


async def test_the_call_log_lists_newest_first_and_filters(api: Api) -> None:
    first = place(api, "13800138000", answer_s=30)
    place(api, "13900139000")
    await api.store.flush_async()
    calls = await api.json("GET", "/api/calls", role="readonly")
    assert [c["verdict"] for c in calls] == ["block", "allow"]
    assert calls[1]["duration"] == 30 and calls[1]["destination"] == "+86138****8000"
    assert len(await api.json("GET", "/api/calls?verdict=allow")) == 1
    assert await api.json("GET", "/api/calls?account=nobody") == []
    one = await api.json("GET", f"/api/calls/{first.id}")
    assert one["decision_id"] == first.id and one["answered_at"]
    assert (await api.json("GET", "/api/calls/nope", status=404))["error_id"] == "not_found"
    assert (await api.json("GET", "/api/calls?since=yesterday", status=400))["field"] == "since"
    assert (await api.json("GET", "/api/calls?limit=0", status=400))["field"] == "limit"


async def test_the_report_counts_connects_durations_blocks_and_complaints(api: Api) -> None:
    place(api, "13800138000", answer_s=40)
    place(api, "13800138001", answer_s=2)
    place(api, "13800138002")
    place(api, "13900139000")
    await api.store.flush_async()
    await api.store.add_complaint("+861088886666", category="harassment", source="12321",
                                  tenant_id="t1", reporter="+8613800138000")
    body = await api.json("GET", "/api/report?by=day,account", role="readonly")
    (row,) = body["rows"]
    assert row["account"] == "a1"
    assert (row["attempts"], row["allowed"], row["blocked"]) == (4, 3, 1)
    assert row["blocked_by_reason"] == {"dnc_listed": 1}
    assert (row["answered"], row["connect_rate"], row["avg_duration"]) == (2, 0.6667, 21.0)
    assert (row["short_calls"], row["short_call_ratio"], row["complaints"]) == (1, 0.5, 1)
    assert body["total"]["attempts"] == 4
    assert (await api.json("GET", "/api/report?by=week", status=400))["field"] == "by"


async def test_policy_show_validate_and_reload(api: Api, tmp_path: Path) -> None:
    shown = await api.json("GET", "/api/policy", role="readonly")
    assert [r["id"] for r in shown["rules"]] == ["party_status", "dnc", "account_per_minute"]
    (pack,) = shown["packs"]  # its sources, each law or practice, and when they were checked
    assert (pack["name"], pack["checked"]) == ("test", "2026-12-02")
    assert [(x["basis"], x["cite"]) for x in pack["sources"]][0] == ("law", "47 CFR 64.1200(d)")
    ok = await api.json("POST", "/api/policy/validate", data=POLICY.read_bytes())
    assert ok["valid"] is True
    bad = await api.json("POST", "/api/policy/validate", data=b"[[rules]]\nid = 1\n")
    assert bad["valid"] is False and bad["issues"][0]["line"] >= 1
    body = await api.json("POST", "/api/policy/reload")
    assert body["reloaded"] is True and body["rules"] == 3
    assert (await api.call("POST", "/api/policy/reload", role="reviewer")).status == 403


async def test_a_broken_policy_file_is_not_loaded(api: Api, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[[rules]]\nkind = 'nonsense'\n")
    object.__setattr__(api.settings, "policy", str(broken))
    body = await api.json("POST", "/api/policy/reload", status=422)
    assert body["error_id"] == "policy_invalid" and body["issues"]
    assert len(api.screener.policy.rules) == 3


async def test_stats_and_audit(api: Api) -> None:
    place(api, "13800138000", answer_s=5)
    stats = await api.json("GET", "/api/stats", role="readonly")
    assert (stats["decisions"], stats["allowed"]) == (1, 1)
    assert stats["snapshot"]["stats"]["lists"] == 1
    await api.json("POST", "/api/tenants", status=201, json={"id": "t3", "name": "Three"})
    audit = await api.json("GET", "/api/audit?party=t3")
    assert [(a["actor"], a["action"]) for a in audit] == [("admin-user", "tenant.create")]


async def read_events(api: Api, count: int,
                      until: str | None = None) -> list[tuple[str, dict]]:
    """The stream's first ``count`` events; with ``until``, every event up to and
    including the first of that kind (at most 50)."""
    response = await api.call("GET", "/api/events", role="readonly")
    assert response.headers["Content-Type"] == "text/event-stream"
    events: list[tuple[str, dict]] = []
    name = ""

    def more() -> bool:
        if until is None:
            return len(events) < count
        assert len(events) < 50, events
        return not events or events[-1][0] != until

    try:
        while more():
            line = (await asyncio.wait_for(response.content.readline(), 5)).decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    finally:
        response.close()
    return events


async def test_the_live_stream_carries_decisions_and_outcomes_masked(api: Api) -> None:
    before = api.screener.events.subscribers  # the metrics collector, the enforcer
    reader = asyncio.ensure_future(read_events(api, 3))
    while api.screener.events.subscribers == before:
        await asyncio.sleep(0.01)
    place(api, "13800138000", answer_s=3)
    events = await reader
    assert [e[0] for e in events] == ["decision", "answered", "outcome"]
    assert events[0][1]["destination"] == "+86138****8000"
    assert events[2][1]["destination"] == "+86138****8000"
    assert events[0][1]["verdict"] == "allow" and events[2][1]["answered"] is True



async def test_the_live_stream_and_metrics_carry_snapshot_and_enforcement_events(
    api: Api,
) -> None:
    """Typed hub events (no dict re-parsed by key): a snapshot swap and an enforcement
    action reach the stream in their documented wire form, and the metrics count them."""
    before = api.screener.events.subscribers
    reader = asyncio.ensure_future(read_events(api, 0, until="enforcement"))
    while api.screener.events.subscribers == before:
        await asyncio.sleep(0.01)
    await api.screener.rebuild()
    suspended = await api.json("POST", "/api/suspend", status=201, json={
        "kind": "account", "key": "a1", "reason": "audit", "duration_s": 60})
    events = await reader
    # the rebuild's snapshot first; the suspension's own rebuild may publish another
    # snapshot before or after its enforcement event
    (kind1, snapshot), (kind2, enforcement) = events[0], events[-1]
    assert {kind for kind, _ in events[1:-1]} <= {"snapshot"}, events
    assert kind1 == "snapshot" and snapshot["stats"]["lists"] >= 0
    assert snapshot["warnings"] == 0
    assert kind2 == "enforcement" and enforcement["event"] == "suspension.created"
    assert enforcement["data"]["id"] == suspended["id"] and enforcement["id"] and enforcement["at"]
    collector = api.client.app[COLLECTOR]  # type: ignore[index]
    deadline = asyncio.get_running_loop().time() + 10
    while collector.other.get("enforcement", 0) < 1:
        assert asyncio.get_running_loop().time() < deadline, "the collector fell behind"
        await asyncio.sleep(0.01)
    assert collector.other["snapshot"] >= 1

async def test_metrics_show_decisions_latency_and_parts(api: Api) -> None:
    place(api, "13800138000", answer_s=3)
    place(api, "13900139000")
    await collected(api, decisions=2)
    response = await api.call("GET", "/metrics", role="readonly")
    text = await response.text()
    assert response.status == 200
    # prometheus-client orders the labels by name (0.26) or as declared (older): either
    assert ('outguard_decisions_total{pbx="default",reason="ok",verdict="allow"} 1.0' in text
            or 'outguard_decisions_total{verdict="allow",reason="ok",pbx="default"} 1.0' in text)
    assert ('outguard_decisions_total{pbx="default",reason="dnc_listed",verdict="block"} 1.0'
            in text or 'outguard_decisions_total{verdict="block",reason="dnc_listed",pbx="default"}'
            ' 1.0' in text)
    assert 'outguard_decision_latency_seconds_bucket{le="+Inf"} 2.0' in text
    assert 'outguard_calls_in_progress 0.0' in text
    assert 'outguard_suspensions_active{party_kind="account"} 0.0' in text
    assert (await api.call("GET", "/metrics", role=None)).status == 401


def _routed(app: web.Application) -> set[tuple[str, str]]:
    return {(r.method.lower(), r.resource.canonical) for r in app.router.routes()
            if r.method != "HEAD" and r.resource is not None}


async def test_the_openapi_document_matches_the_router(api: Api) -> None:
    doc = await api.json("GET", "/api/openapi.json", role=None)
    assert doc["openapi"].startswith("3.")
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    routed = _routed(api.client.app)  # type: ignore[arg-type]
    assert routed - documented == set(), "routes missing from the document"
    assert documented - routed == set(), "documented paths nobody serves"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"], f"{method} {path} has no summary"
            for name in re.findall(r"\{([^}]+)\}", path):
                assert name in [p["name"] for p in op.get("parameters", [])], (path, name)
    assert len(ROUTES) >= 50


@pytest.mark.parametrize(("body", "field"), [
    ({"number": "138@evil/1", "account": "a1"}, "number"),
    ({"number": "13800138000", "account": "a1", "context": "x,y(1)"}, "context"),
    ({"number": "13800138000", "account": "a1", "formats": "ulaw;rm -rf"}, "formats"),
])
async def test_a_test_call_dials_nothing_but_digits(api: Api, body: dict, field: str) -> None:
    got = await api.json("POST", "/api/test-call", status=400, json=body)
    assert got["field"] == field


async def test_a_test_call_without_ari_gets_502(api: Api) -> None:
    object.__setattr__(api.settings, "ari", (AriConfig(url="http://127.0.0.1:9/ari"),))
    got = await api.json("POST", "/api/test-call", status=502,
                         json={"number": "13800138000", "account": "a1"})
    assert got["error_id"] == "ari_unavailable"
    assert (await api.call("POST", "/api/test-call", role="reviewer",
                           json={"number": "1", "account": "a1"})).status == 403
