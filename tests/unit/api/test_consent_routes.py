"""The consent ledger over HTTP: grant, revoke (reviewers may), show, import; a revocation
reaches the running screener's snapshot."""

from __future__ import annotations

from tests.unit.api.conftest import Api


async def test_grant_revoke_and_show_through_the_api(api: Api) -> None:
    body = await api.json("POST", "/api/consent/13800138000/grant", status=201, json={
        "tenant": "t1", "purpose": "marketing", "source": "web_form", "evidence": "form-9",
        "expires_at": "2030-01-01T00:00:00Z"})
    # masked like every number the API shows ([api] show_numbers off by default)
    assert (body["number"], body["channel"], body["list"]) == ("+86138****8000", "api", "consent")
    await api.json("POST", "/api/consent/13800138000/grant", "reviewer", status=403,
                   json={"tenant": "t1", "source": "x"})
    body = await api.json("POST", "/api/consent/13800138000/revoke", "reviewer", status=201,
                          json={"tenant": "t1", "source": "email", "evidence": "mail-3"})
    assert body["listed_on"] == ["optout-t1", "cn_refused"]
    shown = await api.json("GET", "/api/consent/13800138000", "readonly")
    assert [h["action"] for h in shown["history"]] == ["grant", "revoke"]
    assert shown["in_force"] == []
    assert {e["list"] for e in shown["lists"]} == {"optout-t1", "cn_refused"}
    assert shown["number"] == "+86138****8000" and "13800138000" not in str(shown)


async def test_a_revocation_reaches_the_snapshot(api: Api) -> None:
    await api.json("POST", "/api/consent/13800138000/revoke", status=201,
                   json={"tenant": "t1", "source": "call"})
    await api.screener.rebuild()  # what the store's change notification triggers
    snap = api.screener.snapshot
    assert snap is not None and "optout-t1" in snap.lists


async def test_bad_input_names_the_field(api: Api) -> None:
    body = await api.json("POST", "/api/consent/13800138000/grant", status=400,
                          json={"tenant": "t1", "source": "web", "purpose": "sales"})
    assert body["field"] == "purpose"
    body = await api.json("POST", "/api/consent/13800138000/revoke", status=400, json={})
    assert body["field"] == "source"


async def test_csv_import_is_all_or_nothing(api: Api) -> None:
    bad = "action,number,tenant,source\ngrant,13800138000,t1,web\nrevoke,nope,t1,call\n"
    body = await api.json("POST", "/api/consent/import", status=422, data=bad.encode())
    assert body["error_id"] == "import_failed" and body["rejects"][0]["line"] == 3
    assert body["message"].startswith("request body:")
    assert (await api.json("GET", "/api/consent/13800138000"))["history"] == []
    good = "action,number,tenant,source\ngrant,13800138000,t1,web\n"
    assert (await api.json("POST", "/api/consent/import", data=good.encode()))["recorded"] == 1


async def test_reassigned_results_import(api: Api) -> None:
    csv = "number,disconnected\n13800138000,2026-10-01\n"
    body = await api.json("POST", "/api/consent/reassigned/rnd", data=csv.encode())
    assert body == {"list": "rnd", "numbers": 1}


async def test_show_and_list_entries_carry_the_disconnect_date(api: Api) -> None:
    await api.json("POST", "/api/consent/13800138000/grant", status=201, json={
        "tenant": "t1", "source": "web_form", "at": "2026-09-01T00:00:00Z"})
    csv = "number,disconnected\n13800138000,2026-10-01\n"
    await api.json("POST", "/api/consent/reassigned/rnd", data=csv.encode())
    shown = await api.json("GET", "/api/consent/13800138000", "readonly")
    assert shown["in_force"] == [] and [g["void"] for g in shown["void"]] == ["reassigned"]
    page = await api.json("GET", "/api/lists/rnd/entries", "readonly")
    assert page["entries"][0]["disconnected_at"].startswith("2026-")
