"""Stories: a suspended party appeals; a reviewer approves (lift, strike optionally
cleared) or rejects; the party can see its status, history and remaining time."""

from __future__ import annotations

import pytest

from outguard.errors import Conflict, InvalidInput, NotFound
from outguard.store.base import AppealState
from rules.model import PartyState
from tests.unit.enforcement.conftest import DAY, HOUR, Clock, EnforcerFactory


async def test_approved_appeal_lifts_and_clears_the_strike(make_enforcer: EnforcerFactory,
                                                           clock: Clock) -> None:
    enforcer = await make_enforcer()
    suspension = await enforcer.suspend("account", "a1", reason="too many complaints",
                                        actor="ops")
    clock.advance(2 * HOUR)
    appeal = await enforcer.submit_appeal("account", "a1", text="the callee asked us to call",
                                          evidence="recording 2026-11-20.wav", actor="a1")
    assert appeal.suspension_id == suspension.id and appeal.state is AppealState.PENDING
    assert [a.id for a in await enforcer.list_appeals("pending")] == [appeal.id]
    status = await enforcer.status("account", "a1")
    assert status.state is PartyState.SUSPENDED and status.remaining_s == DAY - 2 * HOUR
    assert [a.id for a in status.appeals] == [appeal.id]

    decided = await enforcer.approve_appeal(appeal.id, reviewer="rita",
                                            decision="consent shown", clear_strike=True)
    assert decided.state is AppealState.APPROVED and decided.reviewer == "rita"
    status = await enforcer.status("account", "a1")
    assert status.state is PartyState.ACTIVE and status.strikes == 0
    assert status.history[0].lifted_by == "rita"
    assert await enforcer.list_appeals("pending") == []
    # the strike is gone: the next suspension is the first step again
    again = await enforcer.suspend("account", "a1", reason="again", actor="ops")
    assert again.ends_at is not None and (again.ends_at - again.started_at).total_seconds() == DAY


async def test_approval_without_clearing_keeps_the_strike(make_enforcer: EnforcerFactory) -> None:
    enforcer = await make_enforcer()
    await enforcer.suspend("account", "a1", reason="x", actor="ops")
    appeal = await enforcer.submit_appeal("account", "a1", text="please", actor="a1")
    await enforcer.approve_appeal(appeal.id, reviewer="rita", decision="ok this once")
    status = await enforcer.status("account", "a1")
    assert status.state is PartyState.ACTIVE and status.strikes == 1
    assert status.next_duration_s == 7 * DAY


async def test_rejected_appeal_keeps_the_suspension(make_enforcer: EnforcerFactory) -> None:
    enforcer = await make_enforcer()
    await enforcer.suspend("account", "a1", reason="x", actor="ops")
    appeal = await enforcer.submit_appeal("account", "a1", text="not us", actor="a1")
    with pytest.raises(Conflict):
        await enforcer.submit_appeal("account", "a1", text="again", actor="a1")
    with pytest.raises(InvalidInput):
        await enforcer.reject_appeal(appeal.id, reviewer="rita", decision=" ")
    rejected = await enforcer.reject_appeal(appeal.id, reviewer="rita",
                                            decision="recordings show repeated calls")
    assert rejected.state is AppealState.REJECTED
    assert (await enforcer.status("account", "a1")).state is PartyState.SUSPENDED
    with pytest.raises(Conflict):
        await enforcer.approve_appeal(appeal.id, reviewer="rita", decision="changed my mind")
    # a new appeal may follow a rejected one
    await enforcer.submit_appeal("account", "a1", text="new evidence", actor="a1")


async def test_nothing_to_appeal_or_lift(make_enforcer: EnforcerFactory) -> None:
    enforcer = await make_enforcer()
    with pytest.raises(NotFound):
        await enforcer.submit_appeal("account", "a1", text="why", actor="a1")
    with pytest.raises(NotFound):
        await enforcer.lift("account", "a1", actor="ops", reason="x")
    with pytest.raises(NotFound):
        await enforcer.approve_appeal(999, reviewer="rita", decision="x")
    with pytest.raises(NotFound):
        await enforcer.status("account", "nobody")
    with pytest.raises(InvalidInput):
        await enforcer.status("planet", "a1")
    with pytest.raises(InvalidInput):
        await enforcer.suspend("account", "a1", reason="x", actor="ops", duration_s=0)


async def test_disable_is_permanent_until_a_person_lifts_it(make_enforcer: EnforcerFactory,
                                                           clock: Clock) -> None:
    enforcer = await make_enforcer()
    await enforcer.store.upsert_caller_id("+8613800000009", "t1", verification="verified")
    await enforcer.disable("caller_id", "13800000009", actor="ops", reason="fraud reports")
    with pytest.raises(Conflict):
        await enforcer.disable("caller_id", "+8613800000009", actor="ops", reason="again")
    clock.advance(400 * DAY)
    status = await enforcer.status("caller_id", "138 0000 0009")
    assert status.state is PartyState.DISABLED and status.key == "+8613800000009"
    [lifted] = await enforcer.lift("caller_id", "+8613800000009", actor="boss",
                                   reason="number reassigned")
    assert lifted.lift_reason == "number reassigned"
    assert (await enforcer.status("caller_id", "+8613800000009")).state is PartyState.ACTIVE
    assert (await enforcer.list_suspensions()) == []
    assert len(await enforcer.list_suspensions(active_only=False)) == 1
