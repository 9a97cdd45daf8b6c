"""Fixtures for the enforcement stories: a fresh store, an injected clock, a policy with
an ``[enforcement]`` table of the test's choosing, and helpers that play calls in."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from outguard.callevents import CallDecided, CallEnded
from outguard.enforcement import Enforcer
from outguard.store import SQLiteStore
from outguard.store.aio import AsyncStore
from rules.policy import load_policy
from rules.policy_types import Policy

HOUR, DAY = 3600.0, 86400.0

RULES = """
default_region = "CN"
timezone = "Asia/Shanghai"

[[rules]]
id = "party_status"
kind = "party_status"
cause = 19

[[rules]]
id = "lists"
kind = "lists"          # no names: every dnc/blacklist/complaint list, complaints-<tenant> too
"""

ENFORCEMENT = """
[enforcement]
durations = ["24h", "7d", "30d", "permanent"]
strike_lookback = "180d"
short_call_s = 6
"""


class Clock:
    """Starts on a whole minute a little after the real time (so rows the store stamps
    itself, like a caller ID's created_at, are in its past) and moves only when told."""

    def __init__(self) -> None:
        real = int(time.time())
        self.now = float(real - real % 60 + 120)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    astore = AsyncStore(SQLiteStore(tmp_path / "outguard.db", batch_interval=0.01))
    await astore.create_tenant("t1", "Tenant One")
    await astore.create_tenant("t2", "Tenant Two")
    for account, tenant in (("a1", "t1"), ("a2", "t1"), ("b1", "t2")):
        await astore.create_account(account, tenant)
    yield astore
    await astore.aclose()


PolicyFactory = Callable[[str], Policy]


@pytest.fixture
def make_policy(tmp_path: Path) -> PolicyFactory:
    def make(enforcement: str) -> Policy:
        path = tmp_path / f"policy-{uuid.uuid4().hex[:6]}.toml"
        path.write_text(RULES + ENFORCEMENT + enforcement, encoding="utf-8")
        return load_policy(path)

    return make


EnforcerFactory = Callable[..., Any]


@pytest.fixture
async def make_enforcer(store: AsyncStore, clock: Clock,
                        make_policy: PolicyFactory) -> AsyncIterator[EnforcerFactory]:
    started: list[Enforcer] = []

    async def make(enforcement: str = "", **kwargs: Any) -> Enforcer:
        enforcer = Enforcer(store, make_policy(enforcement), clock=clock, **kwargs)
        await enforcer.start(background=False)
        started.append(enforcer)
        return enforcer

    yield make
    for enforcer in started:
        await enforcer.stop()


def play_call(enforcer: Enforcer, *, account: str = "a1", tenant: str = "t1",
              caller_id: str = "+8613800000001", callee: str = "+8613900000001",
              answered: bool = True, duration: float = 60.0, allowed: bool = True,
              reason: str = "ok", at: float | None = None) -> str:
    """One screened call as the Screener would announce it (decision, then outcome)."""
    now = enforcer.clock() if at is None else at
    decision_id = uuid.uuid4().hex
    decided_at = now - (duration + 5.0 if allowed and answered else 0.0)
    enforcer.observe(CallDecided(
        call_id=decision_id, channel_id="", adapter="ari", at=decided_at, tenant=tenant,
        account=account, caller_id=caller_id, destination=callee, allowed=allowed, rule="",
        reason=reason, message="", cause=0 if allowed else 21, shadow=(), decision_us=10,
    ))
    if allowed:
        enforcer.observe(CallEnded(
            call_id=decision_id, at=now, tenant=tenant, account=account, caller_id=caller_id,
            destination=callee, answered_at=now - duration if answered else None,
            duration=duration if answered else 0.0, cause=16,
        ))
    return decision_id
