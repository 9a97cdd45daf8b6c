"""Caller-ID health over HTTP: the service starts on a call log where a caller ID's
connect rate fell from 50% to 10%, warns, opens a remediation task and throttles the
caller ID's cap (the next call over the reduced limit is refused); the task is worked and
closed through the API, and the cap is whole again."""

from __future__ import annotations

from pathlib import Path

from outguard.service import Screener
from tests.unit.api.conftest import Api, seed_tokens, start_api
from tests.unit.api.test_screening_routes import place
from tests.unit.health import calllog
from outguard.store import open_store
from tests.waiting import eventually


async def snapshot_throttled(screener: Screener, throttled: bool) -> None:
    """Wait until the call path's snapshot has (or no longer has) the throttle."""
    from rules.model import PartyKind

    def probe() -> bool:
        snap = screener.snapshot
        party = snap.party(PartyKind.CALLER_ID, calllog.CID) if snap is not None else None
        return party is not None and (party.cap_factor < 1.0) == throttled

    await eventually(probe, f"the caller ID throttled={throttled} in the snapshot")


async def test_warning_task_throttle_and_close_over_http(tmp_path: Path) -> None:
    db = tmp_path / "outguard.db"
    tokens = seed_tokens(db)
    with open_store(db) as store:
        calllog.dropped(store, recent=120)  # 120 calls today: under the cap of 200 a day
    api: Api = await start_api(tmp_path, store=str(db), tokens=tokens,
                               policy=Path(calllog.__file__).parent / "policy.toml")
    try:
        table = await api.json("GET", "/api/caller-ids/health?days=9", role="readonly")
        [row] = table["rows"]
        assert row["caller_id"] == "+86108***6666"  # numbers masked, as everywhere
        assert row["warning"] is True and row["task_state"] == "open"
        assert row["cap_factor"] == 0.5 and len(row["days"]) == 9
        assert table["settings"]["min_calls"] == 50 and table["timezone"] == "Asia/Shanghai"
        [task] = await api.json("GET", "/api/health-tasks?state=active", role="readonly")
        assert task["id"] == row["task"] and task["opened_by"] == "health:connect_rate_drop"
        assert any("号码认证" in s for s in task["steps"])

        metrics = await (await api.call("GET", "/metrics", role="readonly")).text()
        assert 'outguard_caller_id_health_tasks{state="open"} 1.0' in metrics
        assert "outguard_caller_id_throttled 1.0" in metrics
        assert "outguard_caller_id_health_warnings 1.0" in metrics

        await snapshot_throttled(api.screener, True)
        blocked = place(api, "13700137001")  # 120 calls today >= 200 x 0.5
        assert (blocked.verdict.rule_id, blocked.verdict.reason, blocked.verdict.cause) == (
            "caller_id_per_day", "caller_id_throttled", 34)
        assert f"health task {task['id']}" in blocked.verdict.message

        one = await api.json("GET", f"/api/caller-ids/01088886666/health?days=3")
        assert one["throttled"] and one["open_task"]["id"] == task["id"]
        assert len(one["days"]) == 3 and one["recent"]["connect_rate"] == 0.1
        detail = await api.json("GET", f"/api/health-tasks/{task['id']}")
        assert detail["health"]["warning"] is True

        await api.json("POST", f"/api/health-tasks/{task['id']}/close", role="readonly",
                       status=403, json={"resolution": "x"})
        bad = await api.json("POST", f"/api/health-tasks/{task['id']}/close", role="reviewer",
                             status=400, json={"resolution": " "})
        assert bad["field"] == "resolution"
        noted = await api.json("POST", f"/api/health-tasks/{task['id']}/note", role="reviewer",
                               json={"text": "标记申诉 filed with 360 and Tencent"})
        assert noted["state"] == "working" and noted["notes"][0]["by"] == "reviewer-user"
        closed = await api.json("POST", f"/api/health-tasks/{task['id']}/close",
                                role="reviewer", json={"resolution": "appeals accepted"})
        assert closed["state"] == "closed" and closed["closed_by"] == "reviewer-user"
        again = await api.json("POST", f"/api/health-tasks/{task['id']}/close",
                               role="reviewer", status=409, json={"resolution": "again"})
        assert again["error_id"] == "conflict"
        await snapshot_throttled(api.screener, False)
        metrics = await (await api.call("GET", "/metrics", role="readonly")).text()
        assert "outguard_caller_id_throttled 0.0" in metrics
        assert place(api, "13700137002").allowed
        await api.json("GET", "/api/health-tasks/999", status=404)
        await api.json("GET", "/api/health-tasks?state=paused", status=400)
        await api.json("GET", "/api/caller-ids/13911112222/health", status=404)
    finally:
        await api.client.close()
