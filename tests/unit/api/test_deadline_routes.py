"""Complaint deadlines over HTTP: a 12321 complaint carries its deadline, shows in
/api/complaints/due and in /metrics as it nears and passes, and is closed once, by a
reviewer, with what was done (audited)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from outguard.enforcement.deadlines import CHANNELS, default_deadlines
from tests.unit.api.conftest import Api
from tests.unit.api.test_metrics import scrape


async def test_a_12321_complaint_is_due_overdue_and_closed(api: Api) -> None:
    received = datetime.now(UTC) - timedelta(days=40)  # long past its 15 working days
    old = await api.json("POST", "/api/complaints", role="reviewer", status=201, json={
        "callee": "13800138000", "caller_id": "01088886666", "source": "12321",
        "at": received.isoformat(), "received": received.isoformat()})
    assert old["due_at"] == datetime.fromtimestamp(
        default_deadlines().due_at(CHANNELS["12321"], received.timestamp()).due, UTC).isoformat()
    assert old["deadline"] == "overdue" and old["reporter"] == "+86138****8000"
    fresh = await api.json("POST", "/api/complaints", role="reviewer", status=201, json={
        "callee": "13800138001", "caller_id": "01088886666", "source": "fcc"})
    assert fresh["deadline"] == "open"
    manual = await api.json("POST", "/api/complaints", role="reviewer", status=201, json={
        "callee": "13800138002", "caller_id": "01088886666"})
    assert manual["deadline"] == "none" and manual["due_at"] is None

    due = await api.json("GET", "/api/complaints/due", role="readonly")
    assert [c["id"] for c in due["complaints"]] == [old["id"], fresh["id"]]
    assert due["counts"] == {"overdue": 1, "due_soon": 0, "open": 1,
                             "calendar_unknown": int(old["calendar_unknown"])}
    within = await api.json("GET", "/api/complaints/due?within_days=3", role="readonly")
    assert [c["id"] for c in within["complaints"]] == [old["id"]]
    families = await scrape(api)
    open_ = {(dict(k)["channel"], dict(k)["state"]): v
             for k, v in families["outguard_complaints_open"].items()}
    assert open_[("12321", "overdue")] == 1 and open_[("fcc", "open")] == 1
    assert open_[("12321", "due_soon")] == 0

    await api.json("POST", f"/api/complaints/{old['id']}/close", role="readonly", status=403,
                   json={"resolution": "x"})
    bad = await api.json("POST", f"/api/complaints/{old['id']}/close", role="reviewer",
                         status=400, json={})
    assert bad["field"] == "resolution"
    closed = await api.json("POST", f"/api/complaints/{old['id']}/close", role="reviewer",
                            json={"resolution": "callee on dnc; agent coached"})
    assert closed["deadline"] == "closed" and closed["closed_by"] == "reviewer-user"
    await api.json("POST", f"/api/complaints/{old['id']}/close", role="reviewer", status=409,
                   json={"resolution": "again"})
    await api.json("POST", "/api/complaints/99999/close", status=404, json={"resolution": "x"})
    audit = await api.json("GET", "/api/audit", role="readonly")
    assert any(a["action"] == "complaint.close" and a["actor"] == "reviewer-user" for a in audit)
    due = await api.json("GET", "/api/complaints/due", role="readonly")
    assert [c["id"] for c in due["complaints"]] == [fresh["id"]]


async def test_the_channels_and_their_sources(api: Api) -> None:
    body = await api.json("GET", "/api/complaints/channels", role="readonly")
    by = {c["channel"]: c for c in body["channels"]}
    assert by["12321"]["act_days"] == 15 and by["12321"]["unit"] == "working days"
    assert by["12321"]["forward_days"] == 3
    assert by["ofcom"]["basis"] == "law" and by["fcc"]["act_days"] == 30


async def test_a_deadline_into_an_unknown_year_shows_in_the_counts_metrics_and_health(
    api: Api,
) -> None:
    received = "2030-12-20T10:00:00+08:00"  # no calendar knows 2030-2031 yet
    row = await api.json("POST", "/api/complaints", role="reviewer", status=201, json={
        "callee": "13800138000", "caller_id": "01088886666", "source": "12321",
        "at": received, "received": received})
    assert row["calendar_unknown"] is True
    due = await api.json("GET", "/api/complaints/due", role="readonly")
    assert due["counts"]["calendar_unknown"] == 1
    families = await scrape(api)
    unknown = {dict(k)["channel"]: v
               for k, v in families["outguard_complaints_calendar_unknown"].items()}
    assert unknown["12321"] == 1
    health = await api.json("GET", "/health", role="readonly")
    assert any("1 open complaint deadline(s)" in w for w in health["warnings"])
    channels = await api.json("GET", "/api/complaints/channels", role="readonly")
    assert isinstance(channels["calendar_warnings"], list)
