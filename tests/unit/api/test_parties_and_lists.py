"""Tenants, accounts, mappings, caller IDs, users/tokens, lists and entries over HTTP."""

from __future__ import annotations

import io
import json
from pathlib import Path

from tests.unit.api.conftest import Api, start_api


async def test_tenants_and_accounts_are_created_read_and_disabled(api: Api) -> None:
    await api.json("POST", "/api/tenants", status=201, json={"id": "t2", "name": "Two 二"})
    assert (await api.json("GET", "/api/tenants/t2"))["name"] == "Two 二"
    body = await api.json("PATCH", "/api/tenants/t2", json={"state": "disabled"})
    assert body["state"] == "disabled"
    await api.json("POST", "/api/accounts", status=201,
                   json={"id": "a2", "tenant": "t2", "kind": "campaign", "name": "Spring"})
    assert [a["id"] for a in await api.json("GET", "/api/accounts?tenant=t2")] == ["a2"]
    assert (await api.json("GET", "/api/accounts/a2"))["kind"] == "campaign"
    body = await api.json("PATCH", "/api/accounts/a2", json={"state": "disabled"})
    assert body["state"] == "disabled"
    body = await api.json("PATCH", "/api/accounts/a2", status=400, json={"state": "gone"})
    assert body["error_id"] == "invalid_input"
    body = await api.json("POST", "/api/accounts", status=404, json={"id": "a3", "tenant": "zz"})
    assert body["error_id"] == "not_found"


async def test_mappings_are_added_listed_and_removed(api: Api) -> None:
    m = await api.json("POST", "/api/mappings", status=201,
                       json={"match_kind": "endpoint", "pattern": "agent", "account": "a1"})
    assert [x["pattern"] for x in await api.json("GET", "/api/mappings")] == ["agent"]
    await api.json("DELETE", f"/api/mappings/{m['id']}")
    assert await api.json("GET", "/api/mappings") == []
    assert (await api.json("DELETE", "/api/mappings/abc", status=400))["error_id"] == "bad_request"


async def test_caller_ids_are_normalised_and_masked(api: Api) -> None:
    body = await api.json("PUT", "/api/caller-ids/010-8888-7777",
                          json={"tenant": "t1", "verification": "pending",
                                "verified_until": "2030-01-01T00:00:00+08:00"})
    assert body["e164"] == "+86108***7777"
    assert body["verification"] == "pending"
    got = await api.json("GET", "/api/caller-ids/+861088887777")
    assert got["verified_until"].startswith("2029-12-31T16:00")
    assert len(await api.json("GET", "/api/caller-ids?tenant=t1")) == 2
    bad = await api.json("PUT", "/api/caller-ids/abc", status=400, json={"tenant": "t1"})
    assert bad["error_id"] == "invalid_input"
    naive = await api.json("PUT", "/api/caller-ids/01088887777", status=400,
                           json={"tenant": "t1", "verified_until": "2030-01-01T00:00:00"})
    assert naive["field"] == "verified_until"


async def test_numbers_are_whole_when_the_privacy_setting_says_so(tmp_path: Path) -> None:
    api = await start_api(tmp_path, show_numbers=True)
    try:
        rows = await api.json("GET", "/api/caller-ids")
        assert rows[0]["e164"] == "+861088886666"
    finally:
        await api.client.close()


async def test_users_and_tokens(api: Api) -> None:
    await api.json("POST", "/api/users", status=201, json={"name": "carol", "role": "reviewer"})
    bad = await api.json("POST", "/api/users", status=400, json={"name": "dave", "role": "god"})
    assert bad["error_id"] == "invalid_input"
    assert "carol" in [u["name"] for u in await api.json("GET", "/api/users")]
    new = await api.json("POST", "/api/tokens", status=201, json={"user": "carol", "label": "ci"})
    assert new["token"].startswith("og_") and new["user"]["role"] == "reviewer"
    r = await api.client.get("/api/me", headers={"Authorization": f"Bearer {new['token']}"})
    assert (await r.json())["name"] == "carol"
    assert (await api.json("DELETE", "/api/tokens/nope", status=404))["error_id"] == "not_found"
    assert (await api.json("GET", "/api/users", role="reviewer", status=403))


async def test_lists_entries_search_and_number_lookup(api: Api) -> None:
    lists = await api.json("GET", "/api/lists")
    assert [(x["name"], x["kind"], x["entries"]) for x in lists] == [("dnc", "dnc", 2)]
    await api.json("POST", "/api/lists", status=201,
                   json={"name": "consent", "kind": "consent", "description": "opted in"})
    added = await api.json("POST", "/api/lists/dnc/entries",
                           json={"numbers": ["13700137000", "+86 137 0013 7001"],
                                 "reason": "asked", "expires_at": "2031-01-01T00:00:00Z"})
    assert added == {"added": 2}
    found = await api.json("GET", "/api/lists/dnc/entries?q=1370013&limit=1")
    assert found["more"] is True and len(found["entries"]) == 1
    assert found["entries"][0]["e164"] == "+86137****7000"
    page2 = await api.json("GET", "/api/lists/dnc/entries?q=1370013&limit=1&offset=1")
    assert page2["entries"][0]["e164"].endswith("7001") and page2["more"] is False
    removed = await api.json("POST", "/api/lists/dnc/remove", json={"numbers": ["13700137000"]})
    assert removed == {"removed": 1}
    hit = await api.json("GET", "/api/numbers/13900139000")
    assert [e["list"] for e in hit["entries"]] == ["dnc"]
    bad = await api.json("POST", "/api/lists/dnc/entries", status=400, json={"numbers": ["abc"]})
    assert bad["error_id"] == "invalid_input"
    empty = await api.json("POST", "/api/lists/dnc/entries", status=400, json={"numbers": []})
    assert empty["error_id"] == "bad_request"
    assert (await api.json("GET", "/api/lists/nope/entries", status=404))["kind"] == "list"
    await api.json("DELETE", "/api/lists/consent")
    assert (await api.json("GET", "/api/lists/consent", status=404))["error_id"] == "not_found"
    assert (await api.json("GET", "/api/lists/dnc"))["entries"] == 3


async def test_a_list_is_imported_from_the_body_and_exported(api: Api) -> None:
    text = "13600136000\n13600136001\nnot-a-number\n"
    refused = await api.json("POST", "/api/lists/dnc/import?mode=replace", status=422,
                             data=io.BytesIO(text.encode()), headers={"Content-Type": "text/csv"})
    assert "1 of 3 lines rejected" in refused["message"] and refused["rejects"][0]["line"] == 3
    result = await api.json("POST", "/api/lists/dnc/import?mode=replace&max_reject_ratio=0.5",
                            data=io.BytesIO(text.encode()), headers={"Content-Type": "text/csv"})
    assert (result["accepted"], result["rejected"], result["total"]) == (2, 1, 2)
    assert result["rejects"][0]["line"] == 3
    response = await api.call("GET", "/api/lists/dnc/export")
    assert response.status == 200
    lines = (await response.text()).splitlines()
    assert lines[0].startswith("e164") and lines[1].startswith("+8613600136000")
    response = await api.call("GET", "/api/lists/dnc/export?format=json")
    assert next(e["e164"] for e in json.loads(await response.text())) == "+8613600136000"
    bad = await api.json("POST", "/api/lists/dnc/import?mode=merge", status=400, data=b"x")
    assert bad["field"] == "mode"
    failed = await api.json("POST", "/api/lists/dnc/import", status=422, data=b"nothing\n")
    assert failed["error_id"] == "import_failed"
    assert (await api.call("GET", "/api/lists/dnc/export", role="readonly")).status == 403


async def test_an_import_over_the_size_limit_gets_413_and_changes_nothing(tmp_path: Path) -> None:
    api = await start_api(tmp_path, max_body_bytes=4096)
    try:
        body = io.BytesIO(b"13600136000\n" * 1000)
        got = await api.json("POST", "/api/lists/dnc/import", status=413, data=body)
        assert got["error_id"] == "too_large" and got["limit"] == 4096
        assert (await api.json("GET", "/api/lists/dnc"))["entries"] == 2
    finally:
        await api.client.close()
