"""Story: caller IDs whose real-name verification is missing or expired are suspended by
the sweep, disabled after the grace period, and released when verified again."""

from __future__ import annotations

from datetime import UTC, datetime

from rules.model import PartyState
from tests.unit.enforcement.conftest import DAY, Clock, EnforcerFactory

VERIFICATION = """
[enforcement.verification]
suspend = true
disable_after = "90d"
sweep_every = "1h"
"""


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def test_missing_verification_is_suspended_then_disabled(
    make_enforcer: EnforcerFactory, clock: Clock
) -> None:
    enforcer = await make_enforcer(VERIFICATION)
    await enforcer.store.upsert_caller_id("+8613800000007", "t1", verification="missing")
    await enforcer.store.upsert_caller_id("+8613800000008", "t1", verification="verified",
                                          verified_until=at(clock() + 400 * DAY))
    result = await enforcer.sweep_caller_ids()
    assert result.suspended == ("+8613800000007",) and result.disabled == ()
    status = await enforcer.status("caller_id", "+8613800000007")
    assert status.state is PartyState.SUSPENDED and status.strikes == 0
    assert status.remaining_s is not None and 89.9 * DAY < status.remaining_s <= 90 * DAY + 60
    assert (await enforcer.sweep_caller_ids()).suspended == ()  # nothing twice

    clock.advance(90 * DAY + 120)
    result = await enforcer.sweep_caller_ids()
    assert result.disabled == ("+8613800000007",)
    status = await enforcer.status("caller_id", "+8613800000007")
    assert status.state is PartyState.DISABLED and "90 days" in status.reason
    assert (await enforcer.status("caller_id", "+8613800000008")).state is PartyState.ACTIVE


async def test_expired_verification_is_suspended_and_renewal_releases_it(
    make_enforcer: EnforcerFactory, clock: Clock
) -> None:
    enforcer = await make_enforcer(VERIFICATION)
    await enforcer.store.upsert_caller_id("+8613800000009", "t1", verification="verified",
                                          verified_until=at(clock() + 10 * DAY))
    assert await enforcer.sweep_caller_ids() == type(await enforcer.sweep_caller_ids())()
    clock.advance(11 * DAY)
    assert (await enforcer.sweep_caller_ids()).suspended == ("+8613800000009",)
    status = await enforcer.status("caller_id", "+8613800000009")
    assert status.state is PartyState.SUSPENDED
    assert status.remaining_s == 89 * DAY  # 90 days from the expiry

    await enforcer.store.upsert_caller_id("+8613800000009", "t1", verification="verified",
                                          verified_until=at(clock() + 365 * DAY))
    await enforcer.sweep_caller_ids()
    status = await enforcer.status("caller_id", "+8613800000009")
    assert status.state is PartyState.ACTIVE
    assert status.history[0].lifted_by == "system:verification"


async def test_a_person_who_lifts_a_verification_suspension_is_respected(
    make_enforcer: EnforcerFactory
) -> None:
    enforcer = await make_enforcer(VERIFICATION)
    await enforcer.store.upsert_caller_id("+8613800000010", "t1", verification="pending")
    await enforcer.sweep_caller_ids()
    await enforcer.lift("caller_id", "+8613800000010", actor="ops", reason="documents in post")
    assert (await enforcer.sweep_caller_ids()).suspended == ()
    # still unverified: the snapshot's party_status blocks it as such
    status = await enforcer.status("caller_id", "+8613800000010")
    assert status.state is PartyState.UNVERIFIED


async def test_the_sweep_is_off_unless_the_policy_asks(make_enforcer: EnforcerFactory) -> None:
    enforcer = await make_enforcer()
    await enforcer.store.upsert_caller_id("+8613800000011", "t1", verification="missing")
    assert (await enforcer.sweep_caller_ids()).suspended == ()
