"""``outguard caller-ids health | tasks | task-note | task-close`` and the health part of
``outguard status caller_id``, on a store whose call log shows a caller ID's connect rate
falling from 50% to 10%."""

from __future__ import annotations

from tests.unit.cli.conftest import Cli
from tests.unit.health import calllog
from tests.unit.health.calllog import CID



def dropped(og: Cli) -> None:
    with og.store() as store:
        calllog.dropped(store)


def test_health_shows_the_drop_and_the_task_is_worked_and_closed(og: Cli) -> None:
    dropped(og)
    body = og.json("caller-ids", "health", "010-8888-6666", "--days", "9")
    assert body["warning"] is True and body["throttled"] is False
    assert body["recent"]["connect_rate"] == 0.1 and body["baseline"]["connect_rate"] == 0.5
    assert len(body["days"]) == 9 and sum(d["ended"] for d in body["days"]) == 480
    [row] = og.json("caller-ids", "health")
    assert (row["caller_id"], row["warning"], row["drop"]) == (CID, True, 0.8)
    out = og("caller-ids", "health", "01088886666").output
    assert "early warning: YES" in out and "per day (Asia/Shanghai)" in out

    with og.store() as store:  # what the running service's detector does
        task = store.open_health_task(CID, reason="connect rate 10% against 50%",
                                      figures={}, cap_factor=0.5,
                                      actor="health:connect_rate_drop", tenant_id="t1")
    [listed] = og.json("caller-ids", "tasks", "--state", "active")
    assert listed["id"] == task.id and listed["steps"]
    status = og("status", "caller-id", "01088886666").output  # either spelling
    assert f"THROTTLED: caller-ID caps x 0.5 while remediation task {task.id}" in status
    assert "号码认证" in status and "标记申诉" in status
    assert og.json("status", "caller_id", "01088886666")["health"]["throttled"] is True

    assert "working" in og("caller-ids", "task-note", str(task.id), "--text",
                           "号码认证 submitted").output
    assert "no longer throttled" in og("caller-ids", "task-close", str(task.id),
                                       "--resolution", "标记申诉 accepted").output
    og("caller-ids", "task-close", str(task.id), "--resolution", "again", code=4)
    og("caller-ids", "task-note", "999", "--text", "x", code=3)
    assert og.json("caller-ids", "tasks", "--state", "active") == []
    [closed] = og.json("caller-ids", "tasks", "--caller-id", "01088886666")
    assert closed["state"] == "closed" and closed["resolution"] == "标记申诉 accepted"
    assert [n["text"] for n in closed["notes"]] == ["号码认证 submitted"]
    with og.store() as store:
        actions = [a.action for a in store.list_audit(party_key=CID)]
    assert actions[-3:] == ["health_task.open", "health_task.note", "health_task.close"]


def test_an_unknown_caller_id_is_not_found(og: Cli) -> None:
    og("caller-ids", "health", "13911112222", code=3)
    og("caller-ids", "health", "rubbish", code=2)
