"""Stories on the enforcer: a caller ID whose callees stop answering gets a warning, a
throttle and a remediation task that a person works and closes; a quiet number and a
number that always had a low rate get none. The daily figures come in the policy's zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from outguard.enforcement import Enforcer
from outguard.errors import InvalidInput
from tests.unit.enforcement.conftest import DAY, Clock, EnforcerFactory, play_call

CID = "+8613800000001"


def history(enforcer: Enforcer, clock: Clock, *, days: int, per_day: int, answered: int,
            caller_id: str = CID) -> None:
    """``days`` past days (before the last 24 h) of ``per_day`` ended calls each, of
    which ``answered`` were answered, spread over each day but its first and last two
    hours (the baseline is counted to the hour)."""
    for d in range(days, 0, -1):
        for i in range(per_day):
            at = clock.now - d * DAY - 2 * 3600 - i * ((DAY - 4 * 3600) / per_day)
            play_call(enforcer, caller_id=caller_id, callee=f"+86139{d:02d}{i:06d}",
                      answered=i < answered, duration=60.0, at=at)


def today(enforcer: Enforcer, clock: Clock, *, calls: int, answered: int,
          caller_id: str = CID) -> None:
    """``calls`` calls within the last 24 h but its first two hours (the window's first
    hour bucket counts with the baseline: the figures are kept to the hour)."""
    for i in range(calls):
        at = clock.now - 60 - i * ((DAY - 3 * 3600) / calls)
        play_call(enforcer, caller_id=caller_id, callee=f"+86137{i:08d}",
                  answered=i < answered, duration=60.0, at=at)


async def test_a_sharp_drop_opens_one_task_that_throttles_until_closed(
        make_enforcer: EnforcerFactory, clock: Clock) -> None:
    enforcer = await make_enforcer()
    history(enforcer, clock, days=7, per_day=60, answered=30)   # 50% for a week
    today(enforcer, clock, calls=60, answered=12)               # 20% today
    await enforcer.evaluate(everything=False)
    [task] = await enforcer.list_health_tasks("active")
    assert (task.caller_id, task.state, task.cap_factor) == (CID, "open", 0.5)
    assert "connect rate 20.0% over the last 24h" in task.reason and "50.0%" in task.reason
    assert task.figures["recent"]["ended"] == 60 and task.figures["baseline"]["ended"] == 420
    health = await enforcer.health(CID, days=9)
    body = health.to_dict()
    assert body["throttled"] and body["cap_factor"] == 0.5 and body["warning"]
    assert body["open_task"]["id"] == task.id and body["open_task"]["steps"]
    assert sum(d["ended"] for d in body["days"]) == 480
    assert body["recent"]["connect_rate"] == 0.2 and body["baseline"]["connect_rate"] == 0.5
    # never a second task while one is open; nothing in it names another number
    await enforcer.evaluate(everything=True)
    assert len(await enforcer.list_health_tasks()) == 1
    assert "rotate" not in str(body) and "another number" not in str(body)

    worked = await enforcer.note_health_task(task.id, text="标记申诉 filed with 360", actor="ops")
    assert worked.state == "working"
    closed = await enforcer.close_health_task(task.id, resolution="appeal accepted",
                                              actor="ops")
    assert closed.state == "closed"
    assert (await enforcer.health(CID)).to_dict()["throttled"] is False
    # the same bad day does not reopen it: only calls after the close count as recent
    await enforcer.evaluate(everything=True)
    assert await enforcer.list_health_tasks("active") == []
    clock.advance(3600)
    for i in range(60):  # a new bad stretch after the close
        play_call(enforcer, caller_id=CID, callee=f"+86135{i:08d}", answered=i < 6,
                  at=clock.now - i * 50)
    await enforcer.evaluate(everything=False)
    assert [t.state for t in await enforcer.list_health_tasks()] == ["closed", "open"]


async def test_a_quiet_number_and_a_steady_low_rate_get_no_warning(
        make_enforcer: EnforcerFactory, clock: Clock) -> None:
    enforcer = await make_enforcer()
    quiet, low = "+8613800000002", "+8613800000003"
    history(enforcer, clock, days=7, per_day=5, answered=3, caller_id=quiet)
    today(enforcer, clock, calls=5, answered=0, caller_id=quiet)     # 0% but 5 calls
    history(enforcer, clock, days=7, per_day=60, answered=6, caller_id=low)  # 10%
    today(enforcer, clock, calls=60, answered=5, caller_id=low)      # 8%
    await enforcer.evaluate(everything=True)
    await enforcer.tick(clock.now - 60)
    assert await enforcer.list_health_tasks() == []
    table = {r["caller_id"]: r for r in await enforcer.health_table()}
    assert table[low]["warning"] is False and table[quiet]["warning"] is False
    assert table[low]["baseline_ended"] == 420


async def test_the_policy_tunes_the_detector(make_enforcer: EnforcerFactory,
                                             clock: Clock) -> None:
    enforcer = await make_enforcer(
        "\n[enforcement.caller_id_health]\nmin_calls = 100\ncap_factor = 0.2\n")
    history(enforcer, clock, days=7, per_day=60, answered=30)
    today(enforcer, clock, calls=60, answered=12)
    await enforcer.evaluate()
    assert await enforcer.list_health_tasks() == []  # 60 < min_calls 100
    today(enforcer, clock, calls=50, answered=5)
    await enforcer.evaluate()
    [task] = await enforcer.list_health_tasks()
    assert task.cap_factor == 0.2


async def test_days_follow_the_policy_time_zone(make_enforcer: EnforcerFactory,
                                                clock: Clock) -> None:
    enforcer = await make_enforcer()
    zone = ZoneInfo("Asia/Shanghai")
    local = datetime.fromtimestamp(clock.now, zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    # one call just after local midnight, one 90 minutes before it
    play_call(enforcer, caller_id=CID, at=midnight + 1800, duration=10)
    play_call(enforcer, caller_id=CID, at=midnight - 5400, duration=10)
    days = (await enforcer.health(CID, days=2)).to_dict()["days"]
    with pytest.raises(InvalidInput, match="figures are kept"):
        await enforcer.health(CID, days=30)  # the default policy keeps 9 days
    assert [d["day"] for d in days] == [
        datetime.fromtimestamp(midnight - 5400, zone).date().isoformat(),
        local.date().isoformat()]
    assert [d["ended"] for d in days] == [1, 1]
