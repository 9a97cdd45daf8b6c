"""POST /api/policy/replay: a candidate policy against the logged calls, in a process of
its own; an invalid candidate is refused before any work."""

from __future__ import annotations

import time

import pytest

from outguard.store.base import CallRecord
from tests.unit.api.conftest import Api

CANDIDATE = """
default_region = "CN"
[lists.dnc]
kind = "dnc"
[[rules]]
id = "dnc_strict"
kind = "lists"
lists = ["dnc"]
"""


async def test_replay_reports_the_calls_that_would_change(api: Api) -> None:
    now = time.time()
    api.store.store.record_decision(CallRecord(
        "d1", "", "ari", "t1", "a1", "+861088886666", "+8613900139000", "allow", "", "ok",
        (), 10, now - 60, "marketing", ""))
    await api.store.flush_async()
    body = await api.json("POST", "/api/policy/replay?days=1", "reviewer", data=CANDIDATE)
    assert body["calls"] == 1 and body["changed"] == 1
    change = body["changes"][0]
    assert (change["change"], change["rule"], change["reason"]) == ("newly_blocked", "dnc_strict", "dnc_listed")
    assert change["examples"][0]["destination"] == "+86139****9000"  # masked by default
    await api.json("POST", "/api/policy/replay", "readonly", status=403, data=CANDIDATE)


async def test_an_invalid_candidate_lists_its_problems(api: Api) -> None:
    body = await api.json("POST", "/api/policy/replay", status=422,
                          data=CANDIDATE.replace('lists = ["dnc"]', 'lists = ["nope"]'))
    assert "nope" in str(body)
    body = await api.json("POST", "/api/policy/replay?days=90", status=400, data=CANDIDATE)
    assert body["field"] == "days"


async def test_an_invalid_candidate_is_refused_without_starting_a_replay_process(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting the replay's process costs a second or two of CPU: a candidate that is not
    a valid policy is answered from the policy checker's warm worker, before any."""
    from outguard.api import routes_replay

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("a replay process was started for an invalid candidate")

    monkeypatch.setattr(routes_replay, "ProcessPoolExecutor", no_process)
    for candidate, problem in [("{", "TOML"), (CANDIDATE.replace('"dnc"]', '"nope"]'), "nope")]:
        body = await api.json("POST", "/api/policy/replay", "reviewer", status=422,
                              data=candidate)
        assert problem in str(body)
