"""Stories: complaints put the callee on the tenant's complaint list at once and can stop a
whole tenant; callee marks flag a caller ID; a mis-mark appeal clears the flag. The
Screener screens real attempts, so the block is what a phone would see."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from outguard.callfacts import ChannelFacts
from outguard.enforcement import Enforcer, complaint_list_name
from outguard.errors import InvalidInput
from outguard.service import Decision, Screener
from outguard.store.aio import AsyncStore
from rules.model import PartyKind, PartyState
from tests.unit.enforcement.conftest import Clock, EnforcerFactory, PolicyFactory

TENANT_SHUTDOWN = """
[enforcement.triggers.two_complaints_stop_the_tenant]
metric = "complaints"
scope = "tenant"
window = "30d"
at_least = 2
action = "suspend"
duration = "7d"

[enforcement.triggers.marks]
metric = "marks"
scope = "caller_id"
window = "7d"
at_least = 3
"""

Rig = tuple[Screener, Enforcer]


@pytest.fixture
async def rig(store: AsyncStore, clock: Clock,
              make_policy: PolicyFactory) -> AsyncIterator[Rig]:
    policy = make_policy(TENANT_SHUTDOWN)
    screener = Screener(store, policy, clock=clock, default_tenant="t1")
    await screener.start()
    enforcer = Enforcer(store, policy, events=screener.events, clock=clock)
    await enforcer.start(background=False)
    yield screener, enforcer
    await enforcer.stop()
    await screener.stop()


def dial(screener: Screener, account: str, tenant: str, dialed: str,
         caller_id: str = "13800000001") -> Decision:
    facts = ChannelFacts(adapter="ari", channel_id="c", channel_name="PJSIP/agent-00000001",
                         dialed=dialed, caller_id=caller_id, account=account, tenant=tenant)
    decision = screener.screen(facts)
    if decision.allowed:
        screener.answered(decision.id)
        screener.ended(decision.id, cause=16)
    return decision


async def settle(screener: Screener, enforcer: Enforcer) -> None:
    enforcer.pump()
    await screener.rebuild()


async def test_a_complaint_lists_the_callee_for_that_tenant_only(rig: Rig) -> None:
    screener, enforcer = rig
    assert dial(screener, "a1", "t1", "13900000001").allowed
    await settle(screener, enforcer)
    await enforcer.add_complaint("13900000001", "13800000001", category="骚扰",
                                 source="12321", actor="ops")
    record = await enforcer.store.get_list(complaint_list_name("t1"))
    assert (record.info.kind.value, record.info.scope.value, record.info.scope_key) == (
        "complaint", "tenant", "t1")
    await screener.rebuild()
    blocked = dial(screener, "a2", "t1", "13900000001")
    assert (blocked.allowed, blocked.verdict.reason) == (False, "complaint_listed")
    assert dial(screener, "b1", "t2", "13900000001").allowed
    # counted for the account that made the call, its caller ID and tenant
    assert enforcer.risk("account", "a1").complaints == 1
    assert enforcer.risk("caller_id", "+8613800000001").complaints == 1
    assert enforcer.risk("tenant", "t1").complaints == 1


async def test_two_complaints_stop_every_line_of_the_tenant_until_lifted(rig: Rig) -> None:
    screener, enforcer = rig
    dial(screener, "a1", "t1", "13900000001")
    dial(screener, "a2", "t1", "13900000002", caller_id="13800000002")
    await settle(screener, enforcer)
    await enforcer.add_complaint("13900000001", "13800000001", category="harassment",
                                 source="12321", actor="ops")
    await enforcer.add_complaint("13900000002", "13800000002", category="advertising",
                                 source="ivr_opt_out", actor="ops")
    [firing] = await enforcer.evaluate()
    assert (firing.kind, firing.key) == (PartyKind.TENANT, "t1")
    await screener.rebuild()
    for account in ("a1", "a2"):
        blocked = dial(screener, account, "t1", "13900000003")
        assert (blocked.allowed, blocked.verdict.reason, blocked.verdict.cause) == (
            False, "tenant_suspended", 19)
    assert dial(screener, "b1", "t2", "13900000003").allowed
    status = await enforcer.status("account", "a2")
    assert status.state is PartyState.ACTIVE and status.blocked_by_tenant is not None

    await enforcer.lift("tenant", "t1", actor="boss", reason="complaints investigated")
    await screener.rebuild()
    assert dial(screener, "a1", "t1", "13900000003").allowed


async def test_marks_from_three_callees_flag_the_caller_id_and_a_mismark_appeal_clears_it(
    rig: Rig, clock: Clock
) -> None:
    screener, enforcer = rig
    caller = "13800000005"
    for reporter in ("13900000011", "13900000012", "13900000012"):
        await enforcer.add_mark(reporter, caller, source="app_mark", tenant="t1", actor="feed")
    assert enforcer.risk("caller_id", caller, window_s=7 * 86400).marks == 2
    assert await enforcer.evaluate() == []
    await enforcer.add_mark("13900000013", caller, tenant="t1", actor="feed")
    [firing] = await enforcer.evaluate()
    assert (firing.kind, firing.key, firing.metric) == (PartyKind.CALLER_ID, "+8613800000005",
                                                        "marks")
    await screener.rebuild()
    blocked = dial(screener, "a1", "t1", "13900000099", caller_id=caller)
    assert (blocked.allowed, blocked.verdict.reason) == (False, "caller_id_suspended")

    appeal = await enforcer.submit_appeal("caller_id", caller, actor="t1",
                                          text="误标: these were delivery notifications",
                                          evidence="order numbers 1-3")
    clock.advance(3600)
    await enforcer.approve_appeal(appeal.id, reviewer="rita", decision="mis-marked",
                                  clear_strike=True)
    await screener.rebuild()
    assert dial(screener, "a1", "t1", "13900000099", caller_id=caller).allowed
    assert await enforcer.evaluate() == []  # the old marks no longer count
    clock.advance(60)
    for reporter in ("13900000021", "13900000022", "13900000023"):
        await enforcer.add_mark(reporter, caller, tenant="t1", actor="feed")
    [again] = await enforcer.evaluate()
    assert again.key == "+8613800000005"


async def test_a_marked_caller_id_can_appeal_before_any_flag(rig: Rig, clock: Clock) -> None:
    _, enforcer = rig
    await enforcer.add_mark("13900000011", "13800000006", tenant="t1", actor="feed")
    appeal = await enforcer.submit_appeal("caller_id", "13800000006", text="误标", actor="t1")
    assert appeal.suspension_id is None
    await enforcer.approve_appeal(appeal.id, reviewer="rita", decision="ok")
    clock.advance(60)
    await enforcer.add_mark("13900000012", "13800000006", tenant="t1", actor="feed")
    await enforcer.add_mark("13900000013", "13800000006", tenant="t1", actor="feed")
    assert await enforcer.evaluate() == []  # 2 new marks, the cleared one does not count


async def test_import_complaints_keeps_good_rows_and_reports_bad_ones(
    make_enforcer: EnforcerFactory, tmp_path: Path
) -> None:
    enforcer = await make_enforcer()
    path = tmp_path / "12321.csv"
    path.write_text(
        "callee,caller_id,category,source,tenant,at\n"
        "13900000001,13800000001,harassment,12321,t1,2026-11-20T10:00:00\n"
        "13900000002,13800000001,fraud,12321,t1,\n"
        "not-a-number,13800000001,fraud,12321,t1,\n"
        "13900000003,13800000001,pizza,12321,t1,\n"
        "\n"
        "13900000004,13800000001,广告,12321,t2,1763600000\n",
        encoding="utf-8",
    )
    result = await enforcer.import_complaints(path, actor="ops")
    assert (result.lines, result.added, result.rejected) == (5, 3, 2)
    assert [line for line, _ in result.rejects] == [4, 5]
    assert "callee" in result.rejects[0][1] and "category" in result.rejects[1][1]
    entries = await _numbers(enforcer, complaint_list_name("t1"))
    assert entries == ["+8613900000001", "+8613900000002"]
    complaints = await enforcer.store.list_complaints(caller_id="+8613800000001")
    assert {c.category for c in complaints} == {"harassment", "fraud", "advertising"}
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("number,who\n1,2\n", encoding="utf-8")
    with pytest.raises(InvalidInput):
        await enforcer.import_complaints(bad_header, actor="ops")


async def _numbers(enforcer: Enforcer, name: str) -> list[str]:
    inner = enforcer.store.store
    return await enforcer.store.run(lambda: [e.e164 for e in inner.iter_entries(name)])


async def test_a_12321_export_with_chinese_headers_is_imported_as_it_comes(
    make_enforcer: EnforcerFactory, tmp_path: Path
) -> None:
    enforcer = await make_enforcer()
    path = tmp_path / "12321-export.csv"
    path.write_text(
        "\ufeff举报时间,举报人号码,被举报号码,举报类型,举报内容\n"
        "2026-11-20 10:00:00,13900000021,13800000021,骚扰,天天打电话推销\n"
        "2026-11-20 11:00:00,13900000022,13800000021,诈骗,\n"
        "2026-11-20 12:00:00,13900000023,13800000021,外星人,\n",
        encoding="utf-8",
    )
    result = await enforcer.import_complaints(path, actor="ops")
    assert (result.lines, result.added, result.rejected) == (3, 2, 1)
    assert result.rejects[0][0] == 4 and "category" in result.rejects[0][1]
    complaints = await enforcer.store.list_complaints(caller_id="+8613800000021")
    assert {(c.category, c.source, c.note) for c in complaints} == {
        ("harassment", "12321", "天天打电话推销"), ("fraud", "12321", "")}
