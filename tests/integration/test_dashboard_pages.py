"""Every page of the dashboard driven in headless Chromium, in English and in Chinese,
asserting what a person would check: a list import's result and rejected lines, a
suspension appearing and its lift, a user and a token created, a report CSV downloaded,
the audit log showing those actions, and pages that offer only what the role may do.

One outguard (API part only: these pages need no PBX) and one browser for the module;
screenshots of every page in both languages go to the test artefacts.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from outguard.callfacts import ChannelFacts
from outguard.config import ApiConfig, Settings
from outguard.server import SCREENER, Parts, build_app
from outguard.store import open_store
from outguard.store.base import CallRecord
from tests import leaks
from tests.integration.test_dashboard import _need_chromium
from tests.integration.webdriver import Browser, browser, free_port
from tests.unit.api.conftest import POLICY, seed_tokens

pytestmark = pytest.mark.integration

PAGES = ("live", "overview", "accounts", "callers", "tenants", "suspensions", "complaints",
         "appeals", "lists", "reports", "policy", "users", "audit")


@dataclass
class Dash:
    url: str
    tokens: dict[str, str]
    b: Browser
    files: Path
    downloads: Path


def _seed(db: Path) -> dict[str, str]:
    tokens = seed_tokens(db)  # a user and token per role, tenant t1, account a1, list dnc
    now = time.time()
    with open_store(db) as store:
        for i in range(60):
            store.create_account(f"seat-{i:03d}", "t1", name=f"Agent {i}")
        for i in range(120):  # a call log to chart: yesterday and today
            at = now - (i % 2) * 86400 - i * 60
            allowed = i % 3 != 0
            store.record_decision(CallRecord(
                f"d{i}", f"ch{i}", "ari", "t1", f"seat-{i % 5:03d}", "+861088886666",
                f"+86139{i:08d}", "allow" if allowed else "block", "" if allowed else "dnc",
                "ok" if allowed else "dnc_listed", (), 80, at))
            if allowed:
                store.record_outcome(f"d{i}", answered_at=at + 5 if i % 2 else None,
                                     ended_at=at + 30, duration=25.0 if i % 2 else None, cause=16)
        store.flush()
    return tokens


@pytest.fixture(scope="module")
async def dash(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Dash]:
    _need_chromium()
    tmp = tmp_path_factory.mktemp("dashboard-pages")
    db = tmp / "outguard.db"
    tokens = _seed(db)
    port = free_port()
    settings = Settings(store=str(db), default_tenant="t1", policy=str(POLICY),
                        spool_dir=tempfile.mkdtemp(prefix="spool-", dir=tmp),
                        api=ApiConfig(port=port))
    runner = leaks.BoundedRunner(build_app(settings, Parts(ari=False, agi=False, ami=False)))
    await runner.setup()
    try:
        screener = runner.app[SCREENER]
        assert await screener.wait_ready(10)
        for i in range(2):  # two calls to a number on the dnc list: the dnc rule's hits
            blocked = screener.screen(ChannelFacts(
                adapter="ari", channel_id=f"hit-{i}", channel_name="PJSIP/a1-00000001",
                dialed="13900139000", caller_id="01088886666", account="a1"))
            assert blocked.verdict.reason == "dnc_listed"
        await web.TCPSite(runner, "127.0.0.1", port).start()
        downloads = tmp / "downloads"
        downloads.mkdir()
        async with browser(downloads) as b:
            yield Dash(f"http://127.0.0.1:{port}/", tokens, b, tmp, downloads)
    finally:
        await runner.cleanup()


async def sign_in(d: Dash, role: str, lang: str = "en") -> None:
    b = d.b
    await b.get(d.url)
    await b.script("sessionStorage.clear(); localStorage.setItem('outguard.lang', arguments[0])", lang)
    await b.get(d.url)
    await b.type("#token-input", d.tokens[role])
    await b.click("#login-button")
    await b.wait_for("the tabs", lambda: b.find_all("#tabs button"))


async def tab_ids(d: Dash) -> list[str]:
    return list(await d.b.script(
        "return [...document.querySelectorAll('#tabs button')].map(b => b.dataset.page)"))


async def visit(d: Dash, page: str) -> None:
    """Open a tab and wait until the page has drawn (again)."""
    b = d.b
    before = await b.script(
        "const s = document.getElementById('page-' + arguments[0]);"
        "return s ? Number(s.dataset.rendered || 0) : 0", page)
    await b.click(f'#tabs button[data-page="{page}"]')
    await drawn(d, page, before)


async def drawn(d: Dash, page: str, before: int) -> None:
    await d.b.wait_for(f"the {page} page drawn", lambda: d.b.script(
        "const s = document.getElementById('page-' + arguments[0]);"
        "return s && !s.hidden && !s.dataset.loading && Number(s.dataset.rendered || 0) > arguments[1]",
        page, before))


async def rendered(d: Dash, page: str) -> int:
    return int(await d.b.script(
        "return Number(document.getElementById('page-' + arguments[0]).dataset.rendered || 0)", page))


async def text(d: Dash, css: str) -> str:
    return str(await d.b.script(
        "const el = document.querySelector(arguments[0]); return el ? el.textContent : ''", css))


async def until_text(d: Dash, css: str, *wanted: str) -> str:
    """Wait until the element's text contains every one of ``wanted``."""
    async def probe() -> Any:
        found = await text(d, css)
        return found if all(w in found for w in wanted) else None
    return str(await d.b.wait_for(f"{wanted} in {css}", probe))


async def test_an_admin_manages_every_page_in_english(dash: Dash) -> None:
    d, b = dash, dash.b
    await sign_in(d, "admin")
    tabs = await tab_ids(d)
    assert [t for t in tabs if t in PAGES] == list(PAGES)

    # overview: every day drawn, the zone named, the range and a chosen day highlighted
    await visit(d, "overview")
    before = await rendered(d, "overview")
    await b.click('button[data-range="day"]')
    await drawn(d, "overview", before)
    await until_text(d, "#overview-tz", "Asia/Shanghai")
    await b.wait_for("14 days of columns", lambda: b.script(
        "return document.querySelectorAll('#chart-calls rect.hit').length >= 14"))
    assert await b.script("return document.querySelector('button[data-range=\"day\"]').classList.contains('active')")
    assert await b.script("return document.querySelectorAll('#chart-calls rect.zero').length") > 0
    legend = await b.script("return [...document.querySelectorAll('#chart-calls .legend-item title')].map(t => t.textContent)")
    assert len(legend) == 4 and any("answered / ended" in x or "callee answered" in x for x in legend)
    assert "接通率 = answered / ended" in await b.script(
        "return document.querySelector('#overview-cards [data-definition*=\"ended\"]').title")
    before = await rendered(d, "overview")
    await b.script("document.querySelectorAll('#chart-calls rect.hit')[13].dispatchEvent(new MouseEvent('click'))")
    await drawn(d, "overview", before)
    assert await b.find_all("#chart-calls rect.selected-band")
    assert (await text(d, "#overview-selected")).startswith("Selected:")
    await b.screenshot("dashboard-overview-en")

    # lists: create, import with the reject report, refuse over the threshold, page, export
    await visit(d, "lists")
    await b.fill("#list-create", {"name": "vip-dnc", "kind": "dnc"})
    await until_text(d, "#list-name", "vip-dnc")
    upload = d.files / "numbers.txt"
    upload.write_text("13700137000\n13700137001\nnot a number\n" + "".join(
        f"1370{i:07d}\n" for i in range(2, 129)))
    await b.type("#list-import input[name=file]", str(upload))
    await b.fill("#list-import", {"mode": "add"})
    summary = await until_text(d, "#import-summary", "129 accepted", "1 rejected")
    assert summary.startswith("numbers.txt")
    assert "numbers.txt:3" in await text(d, '#import-result tr[data-line="3"]')
    await until_text(d, ".pager .range", "1–50 of 129")
    before = await rendered(d, "lists")
    await b.click("#list-detail .pager button.next")
    await drawn(d, "lists", before)
    assert "51–100 of 129" in await text(d, "#list-detail .pager .range")
    bad = d.files / "mostly-bad.txt"
    bad.write_text("13700137000\nxx\nyy\n")
    await b.type("#list-import input[name=file]", str(bad))
    await b.fill("#list-import", {"mode": "replace"})
    refused = await until_text(d, "#import-summary", "Refused")
    assert "rejected" in refused and await b.find_all('#import-result tr[data-line="2"]')
    await b.script("document.getElementById('list-q').value = '0137000'")
    before = await rendered(d, "lists")
    await b.script("document.getElementById('list-search').requestSubmit()")
    await drawn(d, "lists", before)
    assert len(await b.find_all("#entries-table tr[data-entry]")) == 1
    await b.click("#list-search button.export")
    await b.wait_for("the export downloaded", lambda: b.script(
        "return document.getElementById('last-download').dataset.name === 'vip-dnc.csv'"))
    await b.screenshot("dashboard-lists-en")

    # suspensions: suspend for an hour, see it, lift it, find it in the history
    await visit(d, "suspensions")
    await b.fill("#suspend-form", {"kind": "account", "key": "seat-007", "duration": "3600",
                                   "reason": "too many short calls"})
    await b.wait_for("the suspension listed", lambda: b.find_all(
        '#suspensions-table tr[data-party="seat-007"]'))
    assert "too many short calls" in await text(d, '#suspensions-table tr[data-party="seat-007"]')
    await b.click('#suspensions-table tr[data-party="seat-007"] button.lift')
    await b.type('#suspensions-table tr[data-party="seat-007"] .reason-input', "spoke to the agent")
    await b.click('#suspensions-table tr[data-party="seat-007"] button.confirm')
    await b.wait_for("the lift", lambda: b.script(
        "return !document.querySelector('#suspensions-table tr[data-party=\"seat-007\"]')"))
    await b.click('button[data-history="true"]')
    await b.wait_for("the lifted suspension in the history", lambda: b.find_all(
        '#suspensions-table tr[data-party="seat-007"][data-lifted="1"]'))
    assert "spoke to the agent" in await text(d, '#suspensions-table tr[data-party="seat-007"]')
    await b.screenshot("dashboard-suspensions-en")

    # accounts: server-side search, sort and paging; create; suspend from the row; history
    await visit(d, "accounts")
    await until_text(d, "#page-accounts .pager .range", "of 61")
    before = await rendered(d, "accounts")
    await b.click('#page-accounts th[data-sort="key"]')
    await drawn(d, "accounts", before)
    before = await rendered(d, "accounts")
    await b.click('#page-accounts th[data-sort="key"]')  # again: descending
    await drawn(d, "accounts", before)
    assert await b.script("return document.querySelector('#page-accounts tbody tr').dataset.party") == "seat-059"
    await b.fill("#account-create", {"id": "seat-new", "tenant": "t1", "name": "New hire"})
    await b.wait_for("the new account", lambda: b.script(
        "return document.querySelector('#page-accounts .pager .range').textContent.includes('of 62')"))
    before = await rendered(d, "accounts")
    await b.fill("#account-search", {"q": "agent 12"})
    await drawn(d, "accounts", before)
    assert await b.script("return [...document.querySelectorAll('#page-accounts tbody tr')].map(r => r.dataset.party)") == ["seat-012"]
    await b.click('tr[data-party="seat-012"] button.suspend')
    await b.type('tr[data-party="seat-012"] .reason-input', "complaints")
    await b.click('tr[data-party="seat-012"] button.confirm')
    await b.wait_for("the row suspended", lambda: b.find_all('tr[data-party="seat-012"][data-state="suspended"]'))
    await b.click('tr[data-party="seat-012"] button.history')
    await until_text(d, "#account-history", "seat-012", "complaints")
    await b.screenshot("dashboard-accounts-en")

    # caller IDs: real-name verification and its expiry
    await visit(d, "callers")
    await b.fill("#caller-put", {"number": "01066667777", "tenant": "t1", "verification": "pending",
                                 "verified_until": "2020-01-31"})
    await b.wait_for("the caller ID", lambda: b.find_all('#page-callers tr[data-party="+86106***7777"]'))
    row = await text(d, '#page-callers tr[data-party="+86106***7777"]')
    assert "pending" in row and "expired" in row
    await b.screenshot("dashboard-callers-en")

    # tenants
    await visit(d, "tenants")
    await b.fill("#tenant-create", {"id": "acme", "name": "ACME Sales"})
    await b.wait_for("the tenant", lambda: b.find_all('#page-tenants tr[data-party="acme"]'))
    await b.screenshot("dashboard-tenants-en")

    # complaints: record one, import a 12321 export with a bad line
    await visit(d, "complaints")
    await b.fill("#complaint-form", {"kind": "complaint", "callee": "13900000001",
                                     "caller_id": "01088886666", "category": "fraud"})
    await b.wait_for("the complaint", lambda: b.script(
        "return [...document.querySelectorAll('#page-complaints tr[data-complaint]')].some(r => r.textContent.includes('fraud'))"))
    export = d.files / "12321.csv"
    export.write_text("举报时间,举报人号码,被举报号码,举报类型\n2026-11-30 10:00:00,13900000002,01088886666,骚扰\n"
                      "2026-11-30 10:05:00,13900000003,01088886666,广告\n2026-11-30 10:09:00,13900000004,01088886666,外星人\n",
                      encoding="utf-8")
    await b.type("#complaint-import input[name=file]", str(export))
    await b.fill("#complaint-import", {"kind": "complaint"})
    await until_text(d, "#complaints-import-result", "2 added, 1 rejected of 3 lines", "12321.csv:4")
    await b.screenshot("dashboard-complaints-en")

    # users and tokens
    await visit(d, "users")
    await b.fill("#user-create", {"name": "carol", "role": "reviewer"})
    await b.wait_for("the user", lambda: b.find_all('tr[data-user="carol"]'))
    await b.fill("#token-create", {"user": "carol", "label": "laptop"})
    secret = await until_text(d, "#token-secret", "og_")
    assert "og_" in secret
    await b.wait_for("the token listed", lambda: b.script(
        "return [...document.querySelectorAll('tr[data-token]')].some(r => r.textContent.includes('laptop'))"))
    await b.script("[...document.querySelectorAll('tr[data-token]')].find(r => r.textContent.includes('laptop'))"
                   ".querySelector('button.revoke').click()")
    await b.wait_for("a revoked token", lambda: b.find_all('tr[data-token][data-revoked="true"]'))
    await b.screenshot("dashboard-users-en")

    # policy: rules with hit counts, a check with its problems, a reload
    await visit(d, "policy")
    hits = await b.script("return [...document.querySelectorAll('#page-policy tr[data-rule=\"dnc\"] td')].map(c => c.textContent)")
    assert hits[:5] == ["dnc", "lists", "3", "enforce", "2"], hits  # blocked twice
    await b.fill("#policy-check", {"text": "default_region = \"CN\"\n[[rules]]\nid = \"x\"\nkind = \"nonsense\"\n"})
    await until_text(d, "#policy-check-result", "problem")
    await b.click("#policy-reload")
    await until_text(d, "#flash", "Reloaded")
    await b.screenshot("dashboard-policy-en")

    # reports: by day and tenant, downloaded as CSV
    await visit(d, "reports")
    before = await rendered(d, "reports")
    await b.fill("#report-form", {"by": "day,tenant", "days": "7"})
    await drawn(d, "reports", before)
    assert await b.find_all('#report-table tr[data-key*="|t1"]')
    await b.click("#report-export")
    name = await b.wait_for("the report CSV", lambda: b.script(
        "const n = document.getElementById('last-download').dataset.name;"
        "return n && n.startsWith('outguard-report-day-tenant') ? n : null"))
    assert (await b.script("return document.getElementById('last-download').dataset.head")).startswith("day,tenant,attempts")
    saved = d.downloads / str(name)
    await b.wait_for("the CSV on disk", lambda: _exists(saved))
    assert saved.read_text(encoding="utf-8-sig").startswith("day,tenant,attempts,allowed")
    await b.screenshot("dashboard-reports-en")

    # the audit log shows what was done here, by whom
    await visit(d, "audit")
    actions = await b.script("return [...document.querySelectorAll('#audit-table tr[data-action]')].map(r => r.dataset.action)")
    for done in ("list.create", "list.import", "suspension.lift", "user.create", "token.create", "tenant.create"):
        assert done in actions, (done, actions)
    assert "admin-user" in await text(d, '#audit-table tr[data-action="user.create"]')
    before = await rendered(d, "audit")
    await b.fill("#audit-filter", {"action": "list"})
    await drawn(d, "audit", before)
    assert set(await b.script("return [...document.querySelectorAll('#audit-table tr[data-action]')].map(r => r.dataset.action)")) <= {
        "list.create", "list.import", "list.add", "list.remove"}
    await b.screenshot("dashboard-audit-en")


async def _exists(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


async def test_every_page_in_chinese_and_the_switch_redraws_what_is_on_screen(dash: Dash) -> None:
    d, b = dash, dash.b
    await sign_in(d, "admin", "en")
    await visit(d, "lists")
    assert "do-not-call" in await text(d, '#page-lists tr[data-list="dnc"]')
    before = await rendered(d, "lists")
    await b.click("#lang")  # the page on screen is redrawn in Chinese, nothing reloaded
    await drawn(d, "lists", before)
    assert "免打扰" in await text(d, '#page-lists tr[data-list="dnc"]')
    assert await text(d, '#tabs button[data-page="lists"]') == "号码名单"
    expected = {
        "live": "今日放行", "overview": "时间为 Asia/Shanghai", "accounts": "坐席账号：风险与状态",
        "callers": "实名认证", "tenants": "新建机构", "suspensions": "封停中",
        "complaints": "导入 CSV", "appeals": "待审核", "lists": "免打扰",
        "reports": "按天", "policy": "当前生效的策略", "users": "API 令牌", "audit": "审计日志",
    }
    tabs = await tab_ids(d)
    for page in tabs:  # every page, those other modules add included
        await visit(d, page)
        if page in expected:
            await until_text(d, f"#page-{page}", expected[page])
        else:  # drawn, in Chinese (its tab at least), without an error
            assert await text(d, f"#page-{page}")
            assert not any("a" <= ch.lower() <= "z" for ch in await text(d, f'#tabs button[data-page="{page}"]'))
        assert not await b.script("const f = document.getElementById('flash'); return !f.hidden && f.classList.contains('error')")
        await b.screenshot(f"dashboard-{page}-zh")
    await visit(d, "suspensions")
    await b.click('button[data-history="true"]')
    row = await until_text(d, '#suspensions-table tr[data-party="seat-007"]', "年")
    assert "账号 seat-007" in row  # party kinds and dates in Chinese
    await visit(d, "overview")
    assert "免打扰名单 (dnc_listed)" in await text(d, "#chart-reasons")
    await b.click("#lang")
    for page in tabs:  # and back: every page in English too
        await visit(d, page)
        await b.screenshot(f"dashboard-{page}-en-all")
    assert "on a do-not-call list (dnc_listed)" in await text(d, "#chart-reasons")


async def test_each_role_sees_only_what_it_may_do(dash: Dash) -> None:
    d, b = dash, dash.b
    await sign_in(d, "readonly")
    tabs = await tab_ids(d)
    assert "users" not in tabs and "lists" in tabs
    await visit(d, "lists")
    assert not await b.find_all("#list-create, #list-import, #list-search button.export")
    await visit(d, "accounts")
    assert not await b.find_all("#account-create, #page-accounts button.suspend")
    await visit(d, "complaints")
    assert not await b.find_all("#complaint-form, #complaint-import")
    status = await b.script(
        "return fetch('/api/suspend', {method: 'POST', headers: {Authorization: 'Bearer ' +"
        " sessionStorage.getItem('outguard.token'), 'Content-Type': 'application/json'},"
        " body: JSON.stringify({kind: 'account', key: 'a1', reason: 'x'})}).then(r => r.status)")
    assert status == 403  # hidden, and the API refuses anyway
    await b.screenshot("dashboard-readonly-accounts")

    await sign_in(d, "reviewer")
    tabs = await tab_ids(d)
    assert "users" not in tabs
    await visit(d, "complaints")
    assert await b.find_all("#complaint-form") and not await b.find_all("#complaint-import")
    await visit(d, "suspensions")
    assert not await b.find_all("#suspend-form")


async def test_compliance_consent_ledger_imports_replay_and_the_policys_sources(dash: Dash) -> None:
    """The Compliance page end to end: an admin records a consent for one campaign and a
    revocation, imports a ledger CSV (a bad line refused, naming it) and reassigned-number
    results, and sees the consent the disconnect date voids; replays a candidate policy;
    the policy page prints the packs' dated sources; a reviewer may revoke but not grant."""
    d, b = dash, dash.b
    await sign_in(d, "admin")
    await visit(d, "compliance")
    await b.script("document.getElementById('consent-number').value = '13800138000'")
    await b.script("document.getElementById('consent-form').requestSubmit()")
    await until_text(d, "#consent-title", "0 consent(s) in force")
    await b.fill("#consent-grant", {"tenant": "t1", "campaign": "spring", "purpose": "marketing",
                                    "source": "web_form", "evidence": "form-42"})
    await until_text(d, "#consent-title", "1 consent(s) in force")
    assert "form-42" in await text(d, '#consent-ledger tr[data-action="grant"]')
    await b.fill("#consent-revoke", {"tenant": "t1", "source": "call", "evidence": "rec-7"})
    await until_text(d, "#consent-title", "0 consent(s) in force")
    assert "rec-7" in await text(d, '#consent-ledger tr[data-action="revoke"]')
    assert await b.find_all('#consent-ledger tr[data-list="optout-t1"]')

    ledger = d.files / "consents.csv"
    ledger.write_text("action,number,source,tenant,at\n"
                      "grant,13800138001,web_form,t1,2026-09-01T10:00:00+08:00\n"
                      "grant,not-a-number,web_form,t1,\n", encoding="utf-8")
    await b.type("#consent-import input[name=file]", str(ledger))
    await b.script("document.getElementById('consent-import').requestSubmit()")
    await until_text(d, "#consent-import-summary", "consents.csv")
    assert await b.find_all('#consent-import-result tr[data-line="3"]')  # all or nothing
    ledger.write_text("action,number,source,tenant,at\n"
                      "grant,13800138001,web_form,t1,2026-09-01T10:00:00+08:00\n", encoding="utf-8")
    await b.type("#consent-import input[name=file]", str(ledger))
    await b.script("document.getElementById('consent-import').requestSubmit()")
    await until_text(d, "#consent-import-summary", "1 record(s) from consents.csv")
    rnd = d.files / "rnd.csv"
    rnd.write_text("number,disconnected\n13800138001,2026-10-01\n", encoding="utf-8")
    await b.type("#consent-reassigned input[name=file]", str(rnd))
    await b.script("document.getElementById('consent-reassigned').requestSubmit()")
    await until_text(d, "#consent-import-summary", "1 number(s) on rnd")
    await b.script("document.getElementById('consent-number').value = '13800138001'")
    await b.script("document.getElementById('consent-form').requestSubmit()")
    await until_text(d, "#consent-ledger .consent-void", "void: consent #", "reassigned")
    assert "0 consent(s) in force" in await text(d, "#consent-title")
    assert await b.find_all('#consent-ledger tr[data-list="rnd"]')
    await b.screenshot("dashboard-compliance-en")

    # replay: the dnc list blocked the seeded calls to it; a candidate without the dnc
    # rule would have let them through
    candidate = 'default_region = "CN"\ntimezone = "Asia/Shanghai"\n'
    await b.script("document.getElementById('replay-policy').value = arguments[0]", candidate)
    await b.script("document.getElementById('replay-form').requestSubmit()")
    summary = await until_text(d, "#replay-result", "calls replayed", "would change")
    assert "newly allowed" in summary
    await b.screenshot("dashboard-replay-en")

    # the lists page offers the litigator and reassigned kinds; a reassigned list shows
    # its disconnect dates
    await visit(d, "lists")
    kinds = await b.script("return [...document.querySelectorAll('#list-create select[name=kind] option')].map(o => o.value)")
    assert {"litigator", "reassigned"} <= set(kinds)
    before = await rendered(d, "lists")
    await b.click('#page-lists tr[data-list="rnd"] a.listlink')
    await drawn(d, "lists", before)
    assert "Disconnected" in await text(d, "#entries-table")

    await visit(d, "policy")
    packs = await until_text(d, "#policy-packs", "The unit tests' policy", "47 CFR 64.1200(d)")
    assert "law" in packs and "practice" in packs
    assert await b.find_all('#policy-packs tr[data-basis="practice"]')
    await b.screenshot("dashboard-policy-packs-en")

    await sign_in(d, "reviewer")
    await visit(d, "compliance")
    await b.script("document.getElementById('consent-number').value = '13800138000'")
    await b.script("document.getElementById('consent-form').requestSubmit()")
    await until_text(d, "#consent-title", "consent(s) in force")
    assert await b.find_all("#consent-revoke") and await b.find_all("#replay-form")
    assert not await b.find_all("#consent-grant, #consent-import, #consent-reassigned")
    await sign_in(d, "readonly")
    await visit(d, "compliance")
    assert not await b.find_all("#replay-form, #consent-import")
