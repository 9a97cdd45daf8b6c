"""The lowest role can neither read files nor slow the calls, and no request, however
malformed, gets a 500: every route fuzzed with broken bodies, headers, path and query
parameters; body limits answered with 413; heavy work and live streams bounded per token
and in all (429)."""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from outguard.api.core import JSON_MAX_BYTES, LIMITS, ROUTES, Limits, TokenCache, TooBusy
from outguard.api.offload import OFFLOAD
from tests.unit.api.conftest import Api
from tests.waiting import eventually

JUNK_PARAMS = ["x1", "%00", "..%2F..%2Fetc%2Fpasswd", "%C3%BC%FF", "9" * 400, "-1", "1e999"]
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
WRONG_TYPES: list[Any] = [None, True, -1, 1.5e308, "", "\x00\x1b[31m\n", [], {}, [[[]]],
                          {"a": {"b": []}}, "9" * 5000]
BODIES = [b"", b"{", b"null", b"[]", b'"x"', b"\xff\xfe\x00garbage", DEEP_JSON, DEEP_OBJECT,
          b'{"number": "\xff"}']


def _filled(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def _typed_bodies(spec: Any) -> list[bytes]:
    """The route's own fields, each set to values of every wrong type."""
    props = (spec.body or {}).get("properties", {})
    if not props:
        return []
    out = []
    for wrong in WRONG_TYPES:
        out.append(json.dumps({name: wrong for name in props}).encode())
    return out


@pytest.mark.parametrize("spec", ROUTES, ids=lambda s: f"{s.method} {s.path}")
async def test_no_malformed_request_gets_a_500(api: Api, spec: Any) -> None:
    failures: list[str] = []
    sent: set[tuple[str, bytes | None]] = set()

    async def probe(path: str, data: bytes | None = None, **headers: str) -> None:
        if (path, data) in sent:  # a path without parameters is the same for every value
            return
        sent.add((path, data))
        response = await api.call(spec.method, path, headers=headers,
                                  data=io.BytesIO(data) if data is not None else None)
        if response.status >= 500 and response.status not in (502, 503):
            failures.append(f"{spec.method} {path} {data[:40] if data else b''!r}:"
                            f" {response.status} {await response.text()}")
        elif response.status >= 400:
            body = await response.json()
            assert body["error_id"] and body["message"], body

    for value in JUNK_PARAMS:
        await probe(_filled(spec.path, value))
    for param in spec.params:
        if param.where == "query":
            for value in JUNK_PARAMS:
                await probe(f"{_filled(spec.path, 'x1')}?{param.name}={value}")
    if spec.method in ("POST", "PUT", "PATCH"):
        for body in BODIES + _typed_bodies(spec):
            await probe(_filled(spec.path, "x1"), body)
            if "{" not in spec.path:
                continue
            await probe(_filled(spec.path, "%C3%BC"), body)
    assert failures == []


@pytest.mark.parametrize("spec", [s for s in ROUTES if s.role is not None],
                         ids=lambda s: f"{s.method} {s.path}")
async def test_a_non_ascii_token_is_refused_with_401(api: Api, spec: Any) -> None:
    for token in ("og_\xff\xfe", "og_ü"):  # (aiohttp's client refuses to send controls)
        headers = {"Authorization": f"Bearer {token}".encode().decode("latin-1")}
        response = await api.client.request(spec.method, _filled(spec.path, "x1"),
                                            headers=headers)
        assert response.status == 401, await response.text()
        assert (await response.json())["error_id"] == "auth_failed"


async def test_deeply_nested_json_is_a_400(api: Api) -> None:
    for body in (DEEP_JSON, DEEP_OBJECT):
        got = await api.json("POST", "/api/tenants", data=body, status=400)
        assert got["error_id"] == "bad_request" and "deep" in got["message"]


async def test_a_policy_over_the_limit_is_a_413_not_a_cut_policy(api: Api) -> None:
    big = b"# padding\n" * (JSON_MAX_BYTES // 10 + 1)
    got = await api.json("POST", "/api/policy/validate", role="readonly",
                         data=io.BytesIO(big), status=413)
    assert got["error_id"] == "too_large" and got["limit"] == JSON_MAX_BYTES
    # just under the limit: read whole, checked whole (a cut body would be invalid TOML)
    fits = b"# padding\n" * (JSON_MAX_BYTES // 10 - 3) + b'timezone = "Asia/Shanghai"\n'
    assert len(fits) <= JSON_MAX_BYTES
    got = await api.json("POST", "/api/policy/validate", role="readonly",
                         data=io.BytesIO(fits))
    assert got == {"valid": True, "issues": [], "rules": 1}  # the built-in party_status


async def test_validate_checks_the_enforcement_table_like_start_does(api: Api) -> None:
    typo = (b"[enforcement.triggers.t]\nmetric = 'complaints'\nscope = 'tenant'\n"
            b"window = '30d'\nat_least = 2\naction = 'suspnd'\n")
    got = await api.json("POST", "/api/policy/validate", role="readonly", data=typo)
    assert got["valid"] is False
    assert got["issues"][0]["key"] == "enforcement.triggers.t.action"
    assert got["issues"][0]["line"] == 6
    bare_date = b"[windows.w]\nhours = { daily = '09:00-21:00' }\nholidays = 2026-10-01\n"
    got = await api.json("POST", "/api/policy/validate", role="readonly", data=bare_date)
    assert got["valid"] is False and got["issues"][0]["key"] == "windows.w.holidays"
    latin1 = await api.json("POST", "/api/policy/validate", role="readonly",
                            data=b'timezone = "Z\xfcrich"\n')
    assert latin1["valid"] is False and "UTF-8" in latin1["issues"][0]["message"]


async def test_an_api_policy_cannot_include_files_outside_the_policy_dir(
    api: Api, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.toml"
    secret.write_text('default_region = "SECRET-VALUE"\n', encoding="utf-8")
    answers = []
    for include in (str(secret), str(tmp_path / "absent.toml"), "../" * 12 + "etc/passwd",
                    str(api.settings.policy)):
        body = f"include = [{json.dumps(include)}]\n".encode()
        got = await api.json("POST", "/api/policy/validate", role="readonly", data=body)
        assert got["valid"] is False
        assert "SECRET" not in json.dumps(got)
        answers.append(got["issues"][0]["message"].replace(include, "X"))
    assert len(set(answers)) == 1  # exists or not: the same answer
    got = await api.json("POST", "/api/policy/validate", role="readonly",
                         data=b'include = ["cn"]\n')
    assert got["valid"] is True


async def test_policy_checks_run_in_a_worker_process(api: Api) -> None:
    got = await api.json("POST", "/api/policy/validate", role="readonly",
                         data=b'timezone = "Asia/Shanghai"\n')
    assert got["valid"] is True
    pool = api.client.app[OFFLOAD]._pool
    assert pool is not None and len(pool._processes) == 1


async def test_live_streams_are_bounded_per_token_and_in_all(api: Api) -> None:
    limits: Limits = api.client.app[LIMITS]
    per_token, total = limits.bounds["streams"]
    opened = []
    try:
        for _ in range(per_token):
            response = await api.call("GET", "/api/events", role="readonly")
            assert response.status == 200
            opened.append(response)
        refused = await api.call("GET", "/api/events", role="readonly")
        assert refused.status == 429 and refused.headers["Retry-After"] == "1"
        assert (await refused.json())["error_id"] == "too_many_requests"
        other = await api.call("GET", "/api/events", role="reviewer")  # another token: fine
        assert other.status == 200
        opened.append(other)
        assert limits.held("streams") == per_token + 1 <= total
    finally:
        for response in opened:
            response.close()
    await eventually(lambda: limits.held("streams") == 0, "the server to notice the closed"
                     " streams", interval=0.01)


async def test_heavy_requests_are_bounded_per_token(api: Api) -> None:
    limits: Limits = api.client.app[LIMITS]
    key = TokenCache.key(api.tokens["readonly"])
    limits.wait_s = 0.2  # a queued request gives up after this long
    with limits.hold("work", key):  # as if a report of this token were still running
        got = await api.json("POST", "/api/policy/validate", role="readonly",
                             data=b"", status=429)
        assert "this token already has 1 heavy requests running" in got["message"]
        assert (await api.call("GET", "/api/report")).status == 200  # admin's token: fine
    assert (await api.call("GET", "/api/report", role="readonly")).status == 200


def test_limits_refuse_over_the_total() -> None:
    limits = Limits(work_per_token=2, work=2)
    with limits.hold("work", "a"), limits.hold("work", "b"):
        with pytest.raises(TooBusy, match="already runs 2 heavy requests"):
            with limits.hold("work", "c"):
                pass
    assert limits.held("work") == 0


async def test_heavy_requests_over_the_bound_wait_their_turn_then_run() -> None:
    limits = Limits(work_per_token=1, work=4, queue_per_token=2, wait_s=5.0)
    order: list[str] = []
    release = asyncio.Event()

    async def first() -> None:
        async with limits.queued("work", "t"):
            order.append("first")
            await release.wait()

    async def later(name: str) -> None:
        async with limits.queued("work", "t"):
            order.append(name)

    tasks = [asyncio.create_task(first())]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(later("second")), asyncio.create_task(later("third"))]
    await eventually(lambda: limits.waiting("t") == 2, "two queued requests", interval=0.001)
    assert order == ["first"]
    with pytest.raises(TooBusy, match="already has 2 heavy requests waiting"):
        async with limits.queued("work", "t"):
            pass
    release.set()
    await asyncio.gather(*tasks)
    assert sorted(order[1:]) == ["second", "third"] and order[0] == "first"
    assert limits.held("work") == 0 and limits.waiting() == 0


async def test_a_heavy_request_that_waits_too_long_is_refused() -> None:
    limits = Limits(work_per_token=1, work=4, wait_s=0.05)
    with limits.hold("work", "t"):
        with pytest.raises(TooBusy, match=r"already has 1 heavy requests running; .*\(waited 0.05 s\)"):
            async with limits.queued("work", "t"):
                pass
    assert limits.held("work") == 0 and limits.waiting() == 0
