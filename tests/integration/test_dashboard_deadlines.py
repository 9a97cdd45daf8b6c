"""The complaint deadlines page in headless Chromium: an overdue 12321 complaint and an
open FCC one are listed nearest deadline first and marked; a reviewer closes the overdue
one with what was done (the store records who); the page reads in Chinese too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.test_dashboard import Served, _need_chromium, served, sign_in
from tests.integration.webdriver import browser

pytestmark = pytest.mark.integration
__all__ = ["served"]  # the fixture: outguard with the API, an admin token


async def test_overdue_complaints_are_marked_and_closed_from_the_page(served: Served) -> None:
    _need_chromium()
    reported = datetime.now(UTC) - timedelta(days=40)
    late = await served.enforcer.add_complaint(
        "13900139001", "01088886666", category="harassment", source="12321", actor="test",
        at=reported, received=reported)
    fresh = await served.enforcer.add_complaint(
        "13900139002", "01088886666", category="harassment", source="fcc", actor="test")
    async with browser() as b:
        await sign_in(b, served)
        await b.click('#tabs button[data-page="deadlines"]')
        rows = await b.wait_for("the complaints by deadline",
                                lambda: b.find_all("#deadline-table tr[data-complaint]"))
        assert len(rows) == 2
        assert await b.script(
            "return [...document.querySelectorAll('#deadline-table tr[data-complaint]')]"
            ".map((r) => r.dataset.complaint + ':' + r.dataset.deadline)") == [
            f"{late.id}:overdue", f"{fresh.id}:open"]
        assert await b.text("#deadline-counts") == "1 overdue, 0 due soon, 1 open"
        assert "+86139****9001" in await b.text(f'tr[data-complaint="{late.id}"]')
        assert "working days" in await b.text("#deadline-channels")

        selector = f'tr[data-complaint="{late.id}"]'
        await b.type(f"{selector} input.resolution", "callee on dnc; agent coached")
        await b.click(f"{selector} button.close-complaint")
        await b.wait_for("the closed complaint gone", lambda: b.script(
            f"return !document.querySelector('{selector}')"))

        await b.click("#lang")
        await b.wait_for("the page in Chinese", lambda: b.script(
            "return document.querySelector('#tabs button[data-page=\"deadlines\"]')"
            ".textContent === '投诉时限'"))
        await b.click('#tabs button[data-page="deadlines"]')
        await b.wait_for("the counts in Chinese", lambda: b.script(
            "return document.getElementById('deadline-counts').textContent"
            ".startsWith('0 件已超期')"))
        await b.wait_for("the open complaint marked in Chinese", lambda: b.script(
            f"const r = document.querySelector('tr[data-complaint=\"{fresh.id}\"]');"
            " return !!r && r.textContent.includes('处理中')"))
        await b.screenshot("deadlines-zh")

    closed = await served.og.store.get_complaint(late.id)
    assert (closed.closed_by, closed.resolution) == ("dash-admin", "callee on dnc; agent coached")
