"""One definition of every figure: the report (CLI and API), the risk figures the
triggers act on and the dashboard's hover text agree on connect rate, short calls (the
policy's short_call_s, not a hard-coded 6 s) and complaint attribution."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from outguard import figures
from outguard.callfacts import ChannelFacts
from outguard.cli import cli
from outguard.config import ApiConfig, Settings
from outguard.server import ENFORCER, Parts, build_app
from tests.unit.api.conftest import POLICY, Api, seed_tokens
from tests.waiting import eventually

CALLER = "01088886666"


@pytest.fixture
async def api10(tmp_path: Path) -> AsyncIterator[Api]:
    """The API over a policy whose short calls are those under 10 s."""
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY.read_text(encoding="utf-8")
                      + "\n[enforcement]\nshort_call_s = 10\n", encoding="utf-8")
    db = tmp_path / "outguard.db"
    tokens = seed_tokens(db)
    settings = Settings(store=str(db), default_tenant="t1", policy=str(policy),
                        api=ApiConfig(show_numbers=True))
    client: TestClient[Any, Any] = TestClient(TestServer(
        build_app(settings, Parts(ari=False, agi=False, ami=False))))
    await client.start_server()
    try:
        yield Api(client, tokens, settings)
    finally:
        await client.close()


def call(api: Api, number: str, account: str, *, talk_s: float | None,
         ends: bool = True) -> None:
    facts = ChannelFacts("ari", f"ch-{number}-{account}", "PJSIP/agent-00000001", number,
                         CALLER, account=account)
    decision = api.screener.screen(facts)
    assert decision.allowed, decision.verdict
    # answered a minute ago, so that every end lies in the past: the risk figures count
    # what happened up to now (by the minute), and an end placed in the future made the
    # test depend on the second it ran at (it failed from about :30 past each minute)
    answered = api.screener.clock() - 60
    if talk_s is not None:
        api.screener.answered(decision.id, at=answered)
    if ends:
        api.screener.ended(decision.id, cause=16, at=answered + (talk_s or 0.0))


async def test_reports_and_risk_figures_use_one_definition(api10: Api) -> None:
    api = api10
    await api.store.create_account("a2", "t1")
    call(api, "13800138001", "a1", talk_s=8.0)    # short under 10 s (not under 6 s)
    call(api, "13800138002", "a1", talk_s=30.0)
    call(api, "13800138003", "a1", talk_s=None)   # not answered
    call(api, "13800138004", "a1", talk_s=None, ends=False)  # still ringing: not ended
    call(api, "13800138005", "a2", talk_s=20.0)
    call(api, "13800138001", "a2", talk_s=None)   # a2 called the complainant last
    await api.store.flush_async()
    await api.json("POST", "/api/complaints", status=201, json={
        "callee": "13800138001", "caller_id": CALLER, "category": "harassment",
        "source": "12321"})
    enforcer = api.client.app[ENFORCER]
    def folded() -> bool:  # the enforcer folds the call events in the background
        enforcer.pump()
        return (enforcer.risk("account", "a1").ended,
                enforcer.risk("account", "a2").ended) == (3, 2)

    await eventually(folded, "the enforcer to fold every call event", interval=0.01)

    report = await api.json("GET", "/api/report?by=account")
    rows = {r["account"]: r for r in report["rows"]}
    risk = {r["key"]: r["figures"] for r in
            (await api.json("GET", "/api/risk?kind=account"))["rows"]}
    assert report["short_call_s"] == 10
    a1 = rows["a1"]
    assert (a1["ended"], a1["answered"], a1["short_calls"]) == (3, 2, 1)
    assert a1["connect_rate"] == pytest.approx(2 / 3, abs=1e-4)  # answered / ended
    for account in ("a1", "a2"):
        for name in ("connect_rate", "short_call_ratio"):
            assert rows[account][name] == pytest.approx(risk[account][name], abs=1e-4), \
                (account, name)
        assert rows[account]["complaints"] == risk[account]["complaints"], account
    assert (rows["a1"]["complaints"], rows["a2"]["complaints"]) == (0, 1)
    assert report["definitions"] == figures.DEFINITIONS
    assert "answered / ended" in report["definitions"]["connect_rate"]
    assert (await api.json("GET", "/api/risk?kind=account"))["definitions"] == \
        figures.DEFINITIONS

    # the CLI prints the same report from the same module
    out = CliRunner().invoke(cli, ["report", "--by", "account", "--json", "--store",
                                   api.settings.store, "--config", "/dev/null"],
                             env={"OUTGUARD_POLICY": api.settings.policy})
    assert out.exit_code == 0, out.output
    cli_rows = {r["account"]: r for r in json.loads(out.output)["rows"]}
    assert cli_rows["a1"]["connect_rate"] == a1["connect_rate"]
    assert cli_rows["a2"]["complaints"] == 1


def test_the_dashboard_shows_each_figures_definition() -> None:
    """The pages take each definition from the API's ``definitions`` (no second copy in
    the dashboard's code) and show it on hover (a title)."""
    here = Path(figures.__file__).parent / "dashboard"
    code = {js.name: js.read_text("utf-8") for js in here.glob("*.js")}
    assert "report.definitions" in code["overview.js"] and "data.definitions" in code["parties.js"]
    assert "title: definition" in code["overview.js"] and "definition: def." in code["overview.js"]
    for text in figures.DEFINITIONS.values():
        assert not any(text in source for source in code.values()), text
