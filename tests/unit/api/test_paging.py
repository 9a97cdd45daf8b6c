"""What the dashboard's pages stand on: search, sort and paging done by the server (a
100k-entry list, 2,000 seats), the audit trail newest first page by page, the token list,
and reports with every period present and as a CSV download."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from outguard.store import open_store
from tests.unit.api.conftest import Api, seed_tokens, start_api

BIG = 100_000


async def test_a_100k_entry_list_is_paged_searched_and_sorted_by_the_server(
        tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    tokens = seed_tokens(db)
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("".join(f"1390{i:07d}\n" for i in range(BIG)))
    with open_store(db) as store:
        assert store.import_list("dnc", numbers, mode="replace").accepted == BIG
    api = await start_api(tmp_path, tokens=tokens, store=str(db), show_numbers=True)
    try:
        first = await api.json("GET", "/api/lists/dnc/entries?limit=50&count=true")
        assert first["total"] == BIG and first["more"] is True
        assert [e["e164"] for e in first["entries"][:2]] == ["+8613900000000", "+8613900000001"]
        deep = await api.json("GET", f"/api/lists/dnc/entries?limit=50&offset={BIG - 10}")
        assert len(deep["entries"]) == 10 and deep["more"] is False and deep["total"] is None
        assert deep["entries"][-1]["e164"] == f"+861390{BIG - 1:07d}"
        last = await api.json("GET", "/api/lists/dnc/entries?limit=3&sort=-number")
        assert [e["e164"] for e in last["entries"]] == [
            f"+861390{BIG - 1 - i:07d}" for i in range(3)]
        found = await api.json("GET", "/api/lists/dnc/entries?q=0099999&limit=5")
        assert [e["e164"] for e in found["entries"]] == ["+8613900099999"]
        assert found["total"] is None and found["more"] is False
        many = await api.json("GET", "/api/lists/dnc/entries?q=1234&limit=5&offset=5")
        assert all("1234" in e["e164"] for e in many["entries"]) and many["more"] is True
        bad = await api.json("GET", "/api/lists/dnc/entries?sort=expires", status=400)
        assert bad["field"] == "sort"
        assert (await api.json("GET", "/api/lists/dnc/entries?limit=1001", status=400))[
            "field"] == "limit"
    finally:
        await api.client.close()


async def test_2000_seats_are_searched_sorted_and_paged_by_the_server(tmp_path: Path) -> None:
    db = tmp_path / "seats.db"
    tokens = seed_tokens(db)
    with open_store(db) as store:
        store.create_tenant("t2", "Tenant two")
        for i in range(2000):
            store.create_account(f"seat-{i:04d}", "t1" if i % 2 else "t2", name=f"Agent {i}")
    api = await start_api(tmp_path, tokens=tokens, store=str(db))
    try:
        await api.json("POST", "/api/suspend", json={
            "kind": "account", "key": "seat-0007", "reason": "complaints", "duration_s": 600},
            status=201)
        page = await api.json("GET", "/api/risk?kind=account&sort=key&limit=25&offset=25",
                              role="readonly")
        assert page["total"] == 2001 and len(page["rows"]) == 25
        assert page["rows"][0]["key"] == "seat-0024" and page["rows"][0]["name"] == "Agent 24"
        desc = await api.json("GET", "/api/risk?kind=account&sort=-key&limit=2")
        assert [r["key"] for r in desc["rows"]] == ["seat-1999", "seat-1998"]
        hit = await api.json("GET", "/api/risk?kind=account&q=agent 123&sort=key")
        assert [r["key"] for r in hit["rows"]] == ["seat-0123", *(f"seat-123{i}" for i in range(10))]
        banned = await api.json("GET", "/api/risk?kind=account&state=suspended")
        assert [(r["key"], r["reason"]) for r in banned["rows"]] == [("seat-0007", "complaints")]
        t2 = await api.json("GET", "/api/risk?kind=account&tenant=t2&limit=1")
        assert t2["total"] == 1000
        assert (await api.json("GET", "/api/risk?sort=colour", status=400))["field"] == "sort"
        callers = await api.json("GET", "/api/risk?kind=caller_id")
        (row,) = callers["rows"]
        assert (row["key"], row["verification"]) == ("+86108***6666", "verified")
    finally:
        await api.client.close()


async def test_the_audit_trail_pages_newest_first_and_filters(api: Api) -> None:
    for i in range(5):
        await api.json("POST", "/api/tenants", json={"id": f"tn{i}", "name": f"T {i}"}, status=201)
    await api.json("PUT", "/api/caller-ids/01066667777", json={"tenant": "t1"})
    newest = await api.json("GET", "/api/audit?order=desc&limit=3", role="readonly")
    assert newest[0]["party_key"] == "+86106***7777"  # masked like everywhere else
    assert newest[0]["id"] > newest[1]["id"] > newest[2]["id"]
    older = await api.json("GET", f"/api/audit?order=desc&limit=3&before={newest[-1]['id']}")
    assert older[0]["id"] < newest[-1]["id"]
    tenants = await api.json("GET", "/api/audit?action=tenant&actor=admin-user&order=desc")
    assert [r["party_key"] for r in tenants] == [f"tn{i}" for i in reversed(range(5))]
    assert (await api.json("GET", "/api/audit?order=up", status=400))["field"] == "order"


async def test_tokens_are_listed_for_admins_only_without_secrets(api: Api) -> None:
    rows = await api.json("GET", "/api/tokens")
    assert {r["user"] for r in rows} == {"admin-user", "reviewer-user", "readonly-user"}
    assert all(set(r) == {"id", "user", "role", "label", "created_at", "revoked", "revoked_at"}
               for r in rows)
    assert not any(api.tokens["admin"] in str(r) for r in rows)
    mine = await api.json("GET", "/api/tokens?user=reviewer-user")
    await api.json("DELETE", f"/api/tokens/{mine[0]['id']}")
    (revoked,) = await api.json("GET", "/api/tokens?user=reviewer-user")
    assert revoked["revoked"] is True and revoked["revoked_at"]
    assert (await api.call("GET", "/api/tokens", role="readonly")).status == 403


async def test_a_report_has_every_period_and_downloads_as_csv(api: Api) -> None:
    now = time.time()
    days = await api.json("GET", f"/api/report?by=day&days=14&fill=true&until={now}")
    assert len(days["rows"]) in (14, 15)  # the window's first and last day may be partial
    assert all(r["attempts"] == 0 and r["connect_rate"] is None for r in days["rows"])
    assert days["timezone"] == api.screener.policy.timezone
    hours = await api.json("GET", f"/api/report?by=hour&days=1&fill=1&until={now}")
    assert len(hours["rows"]) in (24, 25)
    assert (await api.json("GET", "/api/report?by=tenant&fill=1", status=400))["field"] == "fill"
    response = await api.call("GET", "/api/report?by=day,tenant&days=3&format=csv",
                              role="readonly")
    assert response.status == 200 and response.content_type == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO((await response.text()).lstrip("\ufeff"))))
    assert rows[0][:4] == ["day", "tenant", "attempts", "allowed"]
    assert rows[-1][:3] == ["total", "total", "0"]


async def test_a_refused_import_names_the_persons_file_not_the_servers(api: Api) -> None:
    refused = await api.json("POST", "/api/lists/dnc/import?filename=C:%5Cdata%5Cmine.txt",
                             status=422, data=b"13600136000\nxx\nyy\n")
    assert "mine.txt:2: letters in number 'xx'" in refused["message"], refused["message"]
    assert "outguard-upload" not in refused["message"] and refused["path"] == "mine.txt"
    assert [r["line"] for r in refused["rejects"]] == [2, 3]
