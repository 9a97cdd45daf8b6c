"""The dashboard's caller-ID page in headless Chromium: a caller ID whose connect rate
fell shows its warning, daily rates, the reduced caps and its remediation task; a
reviewer records a step and closes the task there (in Chinese too), and the store has it."""

from __future__ import annotations

import uuid

import pytest

from outguard.callevents import CallDecided, CallEnded
from outguard.enforcement import Enforcer
from tests.integration.test_dashboard import (  # noqa: F401  (the served fixture)
    Served,
    _need_chromium,
    served,
    sign_in,
)
from tests.integration.webdriver import browser

pytestmark = pytest.mark.integration

CID = "+861088886666"
DAY = 86400.0


def feed(enforcer: Enforcer, at: float, answered: bool) -> None:
    """One call as the Screener announces it (decision, then outcome)."""
    call_id = uuid.uuid4().hex
    enforcer.observe(CallDecided(
        call_id=call_id, channel_id="", adapter="ari", at=at, tenant="t1", account="a-dash",
        caller_id=CID, destination=f"+86139{uuid.uuid4().int % 10**8:08d}", allowed=True,
        rule="", reason="ok", message="", cause=0, shadow=(), decision_us=10))
    enforcer.observe(CallEnded(
        call_id=call_id, at=at + 65, tenant="t1", account="a-dash", caller_id=CID,
        destination="", answered_at=at + 5 if answered else None,
        duration=60.0 if answered else 0.0, cause=16))


async def test_the_caller_id_page_shows_the_warning_and_works_the_task(served: Served) -> None:
    _need_chromium()
    enforcer = served.enforcer
    now = enforcer.clock()
    for d in range(1, 8):  # a week at 50% ...
        for i in range(40):
            feed(enforcer, now - d * DAY - 7200 - i * 1800, answered=i % 2 == 0)
    for i in range(60):  # ... then 10% over the last day
        feed(enforcer, now - 3600 - i * 1200, answered=i % 10 == 0)
    [task] = await enforcer.check_health(CID)
    async with browser() as b:
        await sign_in(b, served)
        await b.click('#tabs button[data-page="callers"]')
        row = f'#callers-health tr[data-task="{task.id}"]'
        await b.wait_for("the caller ID's health row", lambda: b.find_all(row))
        text = await b.text(row)
        assert "+86108***6666" in text and CID not in text  # masked, as everywhere
        assert "sharp drop" in text and f"× 0.5 (task {task.id})" in text
        assert " 10% 50% 80%" in text  # now, baseline, drop (ui.pct)
        assert "falls 30% below" in await b.text("#health-settings")
        selector = f'#health-tasks tr[data-task-id="{task.id}"]'
        steps = await b.text(selector)
        assert "号码认证" in steps and "标记申诉" in steps
        await b.screenshot("caller-health-en")

        await b.type(f"{selector} .task-input", "号码认证 submitted to the platforms")
        await b.click(f"{selector} button.note")
        await b.wait_for("the task working", lambda: b.find_all(
            f'#health-tasks tr[data-task-id="{task.id}"][data-state="working"]'))
        await b.click("#lang")
        await b.wait_for("the page in Chinese", lambda: b.script(
            "return document.querySelector('#page-callers h3').textContent"
            ".startsWith('主叫号码健康')"))
        await b.wait_for("the task redrawn in Chinese", lambda: b.script(
            f"return document.querySelector('{selector}').textContent.includes('处理中')"))
        assert "接通率骤降" in await b.text(row)
        await b.screenshot("caller-health-zh")
        await b.type(f"{selector} .task-input", "标记申诉 accepted")
        await b.click(f"{selector} button.close")
        await b.wait_for("the task gone from the open ones", lambda: b.script(
            f"return document.querySelector('{selector}') === null"))
        await b.wait_for("the caps whole again", lambda: b.script(
            f"return document.querySelector('{row}') === null"))

    closed = await served.og.store.get_health_task(task.id)
    assert (closed.state, closed.closed_by, closed.resolution) == (
        "closed", "dash-admin", "标记申诉 accepted")
    assert [n["text"] for n in closed.notes] == ["号码认证 submitted to the platforms"]
