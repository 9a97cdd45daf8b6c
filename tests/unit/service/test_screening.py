"""The adapter-neutral screening module: readiness is an event, the adapters share one
decision path and neither imports the other."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

from outguard.callfacts import ChannelFacts
from outguard.screening import Backoff, Unscreened, decide, failure_vars
from outguard.service import Decision, ScreeningUnavailable

ROOT = Path(__file__).parents[3]
FACTS = ChannelFacts("agi", "1.1", "PJSIP/agent-1", "13800138000", "01088886666")


class Waiting:
    """A screener whose first snapshot arrives when ``ready`` is set."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.screened = 0

    async def wait_ready(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self.ready.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    reserves = False  # embedded mode: screen_reserving is never called

    async def screen_reserving(self, facts: ChannelFacts) -> Decision:
        raise AssertionError("embedded mode does not reserve")

    def screen(self, facts: ChannelFacts) -> Decision:
        if not self.ready.is_set():
            raise ScreeningUnavailable("no snapshot")
        self.screened += 1
        raise RuntimeError("engine failure")  # the decision itself is not under test


async def test_a_call_waits_for_readiness_and_is_decided_the_moment_it_comes() -> None:
    screener = Waiting()
    pending = asyncio.ensure_future(decide(screener, FACTS, budget_ms=5000))
    await asyncio.sleep(0)
    assert not pending.done()
    screener.ready.set()
    # the engine failure: the failure policy applies, and the call is logged with why
    assert await pending == Unscreened("screening_error")
    assert screener.screened == 1


async def test_no_readiness_within_the_budget_gives_no_decision() -> None:
    assert await decide(Waiting(), FACTS, budget_ms=1) == Unscreened("screening_unavailable")


def test_failure_variables_name_the_verdict_and_why() -> None:
    assert failure_vars("failed", "screening_unavailable") == {
        "OUTGUARD_REASON": "screening_unavailable", "OUTGUARD_VERDICT": "failed"}
    assert failure_vars("unscreened", "screening_error", "1.1") == {
        "OUTGUARD_REASON": "screening_error", "OUTGUARD_VERDICT": "unscreened",
        "OUTGUARD_DECISION_ID": "1.1"}


def test_backoff_doubles_to_its_ceiling() -> None:
    backoff = Backoff(first_s=0.1, max_s=0.5)
    backoff.connecting()
    assert [backoff.next_delay() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]


def test_the_fastagi_adapter_imports_nothing_from_the_ari_adapter() -> None:
    for path in (ROOT / "agi").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
                     for a in n.names}
        assert not {m for m in imported if m and m.startswith("ari_app")}, path
