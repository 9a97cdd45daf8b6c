"""Hostile channels: a malformed channel variable gets a decision (refused, with the
reason) and a call-log row; no value can forge or repaint a log line."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from outguard.callfacts import ChannelFacts, channel_problems
from outguard.logfmt import configure
from outguard.logsafe import SafeFormatter, escape
from outguard.service import Screener
from outguard.store.aio import AsyncStore
from outguard.store.sqlite import SQLiteStore
from rules.policy import default_policy


def facts(**kw: str) -> ChannelFacts:
    base = {"adapter": "agi", "channel_id": "c1", "channel_name": "PJSIP/agent-00000001",
            "dialed": "13800138000", "caller_id": "01088886666"}
    base.update(kw)
    return ChannelFacts(**base)  # type: ignore[arg-type]


MALFORMED = [
    {"purpose": "junk"},
    {"purpose": "marketing\n"},
    {"purpose": "\x1b[31mservice"},
    {"account": "seat-1\n2026-12-01 INFO outguard: forged"},
    {"account": "a" * 129},
    {"tenant": "t1\x00"},
    {"campaign": "c\u2028x"},
]


@pytest.mark.parametrize("kw", MALFORMED, ids=lambda kw: repr(kw)[:40])
def test_malformed_channel_variables_are_named(kw: dict[str, str]) -> None:
    problems = channel_problems(facts(**kw))
    assert len(problems) == 1 and problems[0].startswith("OUTGUARD_"), problems


def test_well_formed_variables_have_no_problem() -> None:
    assert channel_problems(facts(account="坐席-7", purpose=" Service ", tenant="t1")) == []


@pytest.fixture
async def screener(tmp_path: Path) -> Screener:
    store = AsyncStore(SQLiteStore(tmp_path / "og.db"))
    s = Screener(store, default_policy())
    await s.rebuild()
    yield s  # type: ignore[misc]
    await store.aclose()


@pytest.mark.parametrize("kw", MALFORMED, ids=lambda kw: repr(kw)[:40])
async def test_a_malformed_variable_is_refused_with_a_reason_and_logged(
    screener: Screener, kw: dict[str, str]
) -> None:
    decision = screener.screen(facts(**kw))  # before: ValueError, no row, fail mode applied
    assert not decision.allowed
    assert decision.verdict.reason == "channel_invalid"
    assert decision.verdict.rule_id == "channel_format"
    assert decision.verdict.cause == 21
    assert "OUTGUARD_" in decision.verdict.message
    await screener.store.flush_async()
    row = await screener.store.get_call(decision.id)
    assert row.call.verdict == "block" and row.call.reason == "channel_invalid"
    assert row.ended_at is not None
    assert screener.live_calls() == 0


def test_escape_writes_every_control_character_as_an_escape() -> None:
    assert escape("a\nb\rc\td\x1b[31m\x00\x7f\u2028\U000e0001") == \
        "a\\nb\\rc\\td\\x1b[31m\\x00\\x7f\\u2028\\U000e0001"
    assert escape("坐席 ok") == "坐席 ok"


def test_no_logged_value_forges_a_line_or_reaches_the_terminal_raw() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("outguard.test.hostile")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("call from %s to %s", "seat-1\nERROR outguard: forged", "\x1b[2J138")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed for %r", "x")
    finally:
        log.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines[0] == ("WARNING outguard.test.hostile: call from seat-1\\nERROR outguard: "
                        "forged to \\x1b[2J138")
    assert "\x1b" not in out.getvalue()
    assert lines[2] == "Traceback (most recent call last):"  # tracebacks keep their lines


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_cli_log_formats_escape_control_characters(fmt: str) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = []
    try:
        configure(logging.INFO, fmt)
        (handler,) = root.handlers
        record = logging.LogRecord("outguard.x", logging.WARNING, __file__, 1,
                                   "account %s", ("a\n\x1b[31mb",), None)
        line = handler.format(record)
    finally:
        root.handlers, level = saved
        root.setLevel(level)
    assert "\n" not in line and "\x1b" not in line and len(line.splitlines()) == 1
