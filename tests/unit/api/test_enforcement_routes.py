"""Suspensions, status, appeals, complaints and risk over HTTP (the real Enforcer)."""

from __future__ import annotations

import io

from outguard.api.context import ENFORCER
from tests.unit.api.conftest import Api
from tests.unit.api.test_screening_routes import place


async def test_suspend_status_lift_and_disable(api: Api) -> None:
    s = await api.json("POST", "/api/suspend", status=201,
                       json={"kind": "account", "key": "a1", "reason": "complaints",
                             "duration_s": 3600})
    assert s["party_key"] == "a1" and s["created_by"] == "admin-user" and not s["permanent"]
    status = await api.json("GET", "/api/status/account/a1", role="readonly")
    assert status["state"] == "suspended" and status["active"][0]["id"] == s["id"]
    active = await api.json("GET", "/api/suspensions?kind=account")
    assert [x["id"] for x in active] == [s["id"]]
    lifted = await api.json("POST", "/api/lift", json={"kind": "account", "key": "a1",
                                                       "reason": "retrained"})
    assert [x["id"] for x in lifted["lifted"]] == [s["id"]]
    assert await api.json("GET", "/api/suspensions") == []
    assert len(await api.json("GET", "/api/suspensions?active=false")) == 1
    again = await api.json("POST", "/api/lift", status=404,
                           json={"kind": "account", "key": "a1", "reason": "x"})
    assert again["error_id"] == "not_found"
    d = await api.json("POST", "/api/disable", status=201,
                       json={"kind": "caller_id", "key": "01088886666", "reason": "returned"})
    assert d["permanent"] is True and d["party_key"] == "+86108***6666"


async def test_enforcement_refuses_bad_bodies_and_low_roles(api: Api) -> None:
    bad = await api.json("POST", "/api/suspend", status=400,
                         json={"kind": "planet", "key": "a1", "reason": "x"})
    assert bad["error_id"] == "invalid_input"
    neg = await api.json("POST", "/api/suspend", status=400,
                         json={"kind": "account", "key": "a1", "reason": "x", "duration_s": -5})
    assert neg["field"] == "duration_s"
    missing = await api.json("POST", "/api/suspend", status=400, json={"kind": "account"})
    assert missing["error_id"] == "bad_request"
    assert (await api.call("POST", "/api/suspend", role="reviewer",
                           json={"kind": "account", "key": "a1", "reason": "x"})).status == 403
    assert (await api.json("GET", "/api/status/planet/x", status=400))["field"] == "kind"


async def test_the_appeal_queue_is_worked_by_a_reviewer(api: Api) -> None:
    await api.json("POST", "/api/suspend", status=201,
                   json={"kind": "account", "key": "a1", "reason": "complaints"})
    appeal = await api.json("POST", "/api/appeals", role="reviewer", status=201,
                            json={"kind": "account", "key": "a1", "text": "not me"})
    dup = await api.json("POST", "/api/appeals", status=409,
                         json={"kind": "account", "key": "a1", "text": "again"})
    assert dup["error_id"] == "conflict"
    queue = await api.json("GET", "/api/appeals?state=pending", role="readonly")
    assert [a["id"] for a in queue] == [appeal["id"]]
    assert (await api.json("GET", f"/api/appeals/{appeal['id']}"))["text"] == "not me"
    assert (await api.json("GET", "/api/appeals/999", status=404))["error_id"] == "not_found"
    assert (await api.json("GET", "/api/appeals/x", status=400))["error_id"] == "bad_request"
    assert (await api.json("GET", "/api/appeals?state=maybe", status=400))["field"] == "state"
    denied = await api.call("POST", f"/api/appeals/{appeal['id']}/approve", role="readonly",
                            json={"decision": "ok"})
    assert denied.status == 403
    done = await api.json("POST", f"/api/appeals/{appeal['id']}/approve", role="reviewer",
                          json={"decision": "misattributed"})
    assert done["state"] == "approved" and done["reviewer"] == "reviewer-user"
    twice = await api.json("POST", f"/api/appeals/{appeal['id']}/reject", status=409,
                           json={"decision": "no"})
    assert twice["error_id"] == "conflict"
    assert (await api.json("GET", "/api/status/account/a1"))["state"] == "active"
    await api.json("POST", "/api/suspend", status=201,
                   json={"kind": "account", "key": "a1", "reason": "again"})
    second = await api.json("POST", "/api/appeals", status=201,
                            json={"kind": "account", "key": "a1", "text": "please"})
    rejected = await api.json("POST", f"/api/appeals/{second['id']}/reject",
                              json={"decision": "confirmed"})
    assert rejected["state"] == "rejected"
    assert (await api.json("POST", f"/api/appeals/{second['id']}/approve", status=400,
                           json={}))["field"] == "decision"


async def test_complaints_marks_and_their_import(api: Api) -> None:
    c = await api.json("POST", "/api/complaints", role="reviewer", status=201, json={
        "callee": "13800138000", "caller_id": "01088886666", "source": "12321"})
    assert c["kind"] == "complaint" and c["caller_id"] == "+86108***6666"
    m = await api.json("POST", "/api/complaints", status=201, json={
        "kind": "mark", "callee": "13800138001", "caller_id": "01088886666"})
    assert m["kind"] == "mark"
    bad = await api.json("POST", "/api/complaints", status=400, json={
        "kind": "praise", "callee": "13800138001", "caller_id": "01088886666"})
    assert bad["field"] == "kind"
    csv = b"callee,caller_id,category,source\n13800138002,01088886666,fraud,12321\nx,y,z,w\n"
    result = await api.json("POST", "/api/complaints/import", data=io.BytesIO(csv))
    assert (result["added"], result["rejected"]) == (1, 1)
    rows = await api.json("GET", "/api/complaints?caller_id=01088886666", role="readonly")
    assert sorted(r["kind"] for r in rows) == ["complaint", "complaint", "mark"]
    assert (await api.json("POST", "/api/complaints/import?kind=x", status=400,
                           data=b""))["field"] == "kind"


async def test_the_risk_table_joins_figures_and_state(api: Api) -> None:
    place(api, "13800138000", answer_s=2)
    place(api, "13900139000")
    await api.store.flush_async()
    api.client.app[ENFORCER].pump()  # fold the decisions in now
    await api.json("POST", "/api/suspend", status=201,
                   json={"kind": "account", "key": "a1", "reason": "x", "duration_s": 60})
    table = await api.json("GET", "/api/risk?kind=account", role="readonly")
    (row,) = table["rows"]
    assert (row["key"], row["state"], row["tenant"]) == ("a1", "suspended", "t1")
    assert row["figures"]["attempts"] == 2 and row["figures"]["blocked"] == 1
    callers = await api.json("GET", "/api/risk?kind=caller_id")
    assert callers["rows"][0]["key"] == "+86108***6666"
    one = await api.json("GET", "/api/risk/account/a1?window_s=3600")
    assert one["attempts"] == 2
    assert (await api.json("GET", "/api/risk?window_s=1", status=400))["field"] == "window_s"


async def test_enforcement_routes_on_a_party_nobody_knows_answer_404(api: Api) -> None:
    for path, body in (
        ("/api/suspend", {"kind": "account", "key": "a1-typo", "reason": "x",
                          "duration_s": 60}),
        ("/api/disable", {"kind": "tenant", "key": "t9", "reason": "x"}),
        ("/api/lift", {"kind": "account", "key": "nobody", "reason": "x"}),
    ):
        answer = await api.json("POST", path, status=404, json=body)
        assert answer["error_id"] == "not_found", (path, answer)
    for path in ("/api/status/account/nobody", "/api/risk/account/nobody"):
        assert (await api.json("GET", path, status=404))["error_id"] == "not_found", path
    assert await api.json("GET", "/api/suspensions?active=false") == []
