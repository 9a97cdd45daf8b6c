"""The admin surface end to end: a call placed through the sandbox PBX appears in the
dashboard's live feed in headless Chromium, a reviewer approves an appeal there, and
``outguard call`` reports the verdict of a real call.

Needs Debian's ``chromium`` and ``chromium-driver`` (/usr/bin/chromium,
/usr/bin/chromedriver). Locally a missing browser skips these tests; with CI=true it fails
them, like a missing Asterisk.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aiohttp import web
from click.testing import CliRunner

from outguard.cli import cli
from outguard.config import ApiConfig
from outguard.enforcement import Enforcer
from outguard.server import ENFORCER, Parts
from outguard.testing import sipp
from tests.integration.conftest import Running, settings_for, start_outguard
from tests.integration.webdriver import Browser, binaries, browser, free_port

pytestmark = pytest.mark.integration

ALLOWED = "13800138000"


def _need_chromium() -> None:
    chromium, driver = binaries()
    if chromium and driver:
        return
    reason = "headless Chromium is missing (apt-get install chromium chromium-driver)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"integration test cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class Served:
    og: Running
    url: str
    token: str

    @property
    def enforcer(self) -> Enforcer:
        return self.og.app[ENFORCER]


@pytest.fixture
async def served(clean_pbx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    """outguard with the API part, listening on a free port, with an admin token, an
    account and a suspended account that has appealed."""
    port = free_port()
    settings = settings_for(clean_pbx, tmp_path / "outguard.db")
    settings = replace(settings, api=ApiConfig(port=port))
    runner = await start_outguard(clean_pbx, settings, Parts(agi=False, ami=False), monkeypatch)
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        og = Running(runner.app, settings, clean_pbx)
        store = og.store
        await store.create_user("dash-admin", "admin")
        token = (await store.create_token("dash-admin")).token
        await store.create_tenant("t1", "Tenant one")
        await store.create_account("a-dash", "t1")
        await store.create_account("a-appeal", "t1")
        enforcer: Enforcer = runner.app[ENFORCER]
        await enforcer.suspend("account", "a-appeal", reason="complaints", actor="test",
                               duration_s=3600)
        await enforcer.submit_appeal("account", "a-appeal", text="those calls were not ours",
                                     actor="test")
        await og.screener.rebuild()
        yield Served(og, f"http://127.0.0.1:{port}/", token)
    finally:
        await runner.cleanup()


async def sign_in(b: Browser, served: Served) -> None:
    await b.get(served.url)
    await b.script("localStorage.setItem('outguard.lang', 'en')")
    await b.get(served.url)
    await b.type("#token-input", served.token)
    await b.click("#login-button")
    await b.wait_for("the live stream", lambda: b.script(
        "return document.getElementById('stream-state').className === 'ok'"))


async def test_a_call_through_the_pbx_appears_live_and_an_appeal_is_approved(
    served: Served,
) -> None:
    _need_chromium()
    async with browser() as b:
        await sign_in(b, served)
        assert "dash-admin (admin)" in await b.text("#who")
        with sipp.Carrier(served.og.pbx.inst, hold_ms=800):
            run = await served.og.call(ALLOWED, account="a-dash")
        assert run.only.final == 200

        rows = await b.wait_for("the call in the live feed",
                                lambda: b.find_all("#live-feed tr[data-decision]"))
        assert len(rows) == 1
        row = await b.text("#live-feed tr[data-decision]")
        assert "a-dash" in row and "allowed" in row
        assert "+86138****8000" in row and ALLOWED not in row  # masked by default
        await b.wait_for("the call's outcome", lambda: b.script(
            "return document.querySelector('#live-feed tr .outcome').textContent"
            ".startsWith('answered')"))

        await b.click('#tabs button[data-page="appeals"]')
        (appeal,) = await served.enforcer.list_appeals("pending")
        selector = f'tr[data-appeal-id="{appeal.id}"]'
        await b.wait_for("the pending appeal", lambda: b.find_all(f"#appeals-pending {selector}"))
        await b.type(f"{selector} .decision-input", "complaints were about another seat")
        await b.click(f"{selector} button.approve")
        await b.wait_for("the approved appeal", lambda: b.find_all(
            f'#appeals-decided {selector}[data-state="approved"]'))

    decided = await served.og.store.get_appeal(appeal.id)
    assert (decided.state.value, decided.reviewer) == ("approved", "dash-admin")
    status = await served.enforcer.status("account", "a-appeal")
    assert status.state.value == "active"


async def test_outguard_call_reports_the_verdict_of_a_real_call(served: Served) -> None:
    og = served.og
    inst = og.pbx.inst
    env = {"OUTGUARD_ARI_URL": inst.ari_url, "OUTGUARD_ARI_USER": inst.ari_user,
           "OUTGUARD_ARI_PASSWORD": inst.ari_password}
    store = str(og.settings.store)
    with sipp.Carrier(inst, hold_ms=500):
        allowed = await asyncio.to_thread(CliRunner().invoke, cli, [
            "call", ALLOWED, "--from", "a-dash", "--caller-id", "01088886666", "--store", store,
            "--json"], env=env)
    assert allowed.exit_code == 0, allowed.output
    body = json.loads(allowed.stdout)
    assert body["answered"] is True, allowed.stdout
    assert (body["decision"]["verdict"], body["decision"]["account"]) == ("allow", "a-dash")
    assert body["decision"]["answered_at"] is not None

    await og.store.create_list("dnc", "dnc")
    await og.store.add_entries("dnc", ["13900139000"])
    await og.screener.rebuild()
    blocked = await asyncio.to_thread(CliRunner().invoke, cli, [
        "call", "13900139000", "--from", "a-dash", "--caller-id", "01088886666", "--store",
        store], env=env)
    assert blocked.exit_code == 5, blocked.output
    assert blocked.output.startswith("BLOCK") and "dnc_listed" in blocked.output


async def test_the_api_places_a_test_call_too(served: Served) -> None:
    import aiohttp

    headers = {"Authorization": f"Bearer {served.token}"}
    with sipp.Carrier(served.og.pbx.inst, hold_ms=300):
        async with aiohttp.ClientSession() as http, http.post(
                served.url + "api/test-call", headers=headers,
                json={"number": ALLOWED, "account": "a-dash", "caller_id": "01088886666"}) as r:
            body = await r.json()
    assert r.status == 200, body
    assert body["decision"]["verdict"] == "allow" and body["answered"] is True
    assert body["decision"]["destination"] == "+86138****8000"


async def test_the_live_page_starts_from_todays_call_log_and_redraws_in_chinese(
    served: Served,
) -> None:
    """A call decided before the page opened is in the feed, counted as today's, with
    its outcome; switching to Chinese redraws the rows already on screen."""
    _need_chromium()
    with sipp.Carrier(served.og.pbx.inst, hold_ms=1200):
        run = await served.og.call(ALLOWED, account="a-dash")
    assert run.only.final == 200
    await served.og.settle()
    async with browser() as b:
        await sign_in(b, served)
        await b.wait_for("the earlier call in the feed",
                         lambda: b.find_all("#live-feed tr[data-decision]"))
        row = await b.text("#live-feed tr[data-decision]")
        assert "a-dash" in row and "allowed" in row and re.search(r"answered \d+ s", row)
        assert await b.text("#live-allowed") == "1" and await b.text("#live-blocked") == "0"
        assert await b.script(
            "return document.querySelector('#live-allowed').previousElementSibling"
            ".textContent") == "Allowed today"
        await b.screenshot("live-en")
        await b.click("#lang")
        await b.wait_for("the feed redrawn in Chinese", lambda: b.script(
            "return document.querySelector('#live-feed tr .badge').textContent === '放行'"))
        row = await b.text("#live-feed tr[data-decision]")
        assert re.search(r"接通 \d+ 秒", row) and "allowed" not in row
        assert await b.script(
            "return document.querySelector('#live-allowed').previousElementSibling"
            ".textContent") == "今日放行"
        assert await b.text("#live-allowed") == "1"  # the switch kept today's count
        assert await b.text("#stream-state") == "已连接"
        shot = await b.screenshot("live-zh")
        assert shot.stat().st_size > 10_000


def test_the_font_stack_names_a_chinese_font_this_linux_has() -> None:
    """README: a Linux screen needs fonts-noto-cjk or fonts-wqy-microhei (run.sh installs
    the latter so the browser tests' screenshots show Chinese, not boxes)."""
    import subprocess

    css = (Path(__file__).parents[2] / "outguard" / "dashboard" / "style.css").read_text()
    stack = re.search(r"body \{[^}]*font: [^,]+,([^;]+);", css)
    assert stack is not None
    families = {f.strip().strip('"') for f in stack.group(1).split(",")}
    assert {"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC"} <= families  # mac, win, linux
    if shutil.which("fc-list") is None:
        pytest.skip("no fontconfig here")
    listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True,
                            timeout=30).stdout
    installed = {name.strip() for line in listed.splitlines() for name in line.split(",")}
    if not installed & families and os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        pytest.skip("no Chinese font installed (apt-get install fonts-wqy-microhei)")
    assert installed & families, f"none of {sorted(families)} is installed: {sorted(installed)}"
