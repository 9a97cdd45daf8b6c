"""Tokens, roles, error bodies and limits, across the whole route table."""

from __future__ import annotations

import io
import re

import pytest

from outguard.api.core import JSON_MAX_BYTES, ROLE_RANK, ROUTES, TokenCache
from outguard.store.base import User
from tests.unit.api.conftest import Api

PUBLIC = {"/api/openapi.json"}


def concrete(path: str) -> str:
    """A route template with its placeholders filled."""
    return re.sub(r"\{[^}]+\}", "x1", path)


@pytest.mark.parametrize("spec", [s for s in ROUTES if s.path not in PUBLIC],
                         ids=lambda s: f"{s.method} {s.path}")
async def test_every_route_but_the_public_ones_refuses_a_missing_token(api: Api, spec) -> None:
    response = await api.call(spec.method, concrete(spec.path), role=None)
    body = await response.json()
    assert response.status == 401
    assert body["error_id"] == "auth_failed"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_wrong_token_is_refused_and_the_failure_is_cached(api: Api) -> None:
    headers = {"Authorization": "Bearer og_abc_wrong"}
    for _ in range(2):
        response = await api.client.get("/api/tenants", headers=headers)
        assert response.status == 401
    assert (await response.json())["error_id"] == "auth_failed"


async def test_a_malformed_authorization_header_is_refused(api: Api) -> None:
    response = await api.client.get("/api/tenants", headers={"Authorization": "Basic abc"})
    assert response.status == 401


@pytest.mark.parametrize("role", ["reviewer", "readonly"])
async def test_admin_routes_refuse_lower_roles_with_403(api: Api, role: str) -> None:
    body = await api.json("POST", "/api/tenants", role=role, status=403,
                          json={"id": "t9", "name": "x"})
    assert body["error_id"] == "forbidden"
    assert body["needed"] == "admin"


def test_every_declared_role_is_known() -> None:
    assert {s.role for s in ROUTES} <= set(ROLE_RANK) | {None}


async def test_readonly_may_read(api: Api) -> None:
    assert [t["id"] for t in await api.json("GET", "/api/tenants", role="readonly")] == ["t1"]
    me = await api.json("GET", "/api/me", role="readonly")
    assert me == {"name": "readonly-user", "role": "readonly", "disabled": False,
                  "created_at": me["created_at"]}


async def test_a_revoked_token_stops_working_at_once(api: Api) -> None:
    new = await api.json("POST", "/api/tokens", status=201, json={"user": "readonly-user"})
    headers = {"Authorization": f"Bearer {new['token']}"}
    assert (await api.client.get("/api/tenants", headers=headers)).status == 200
    await api.json("DELETE", f"/api/tokens/{new['id']}")
    assert (await api.client.get("/api/tenants", headers=headers)).status == 401


async def test_a_disabled_user_is_locked_out(api: Api) -> None:
    await api.json("PATCH", "/api/users/readonly-user", json={"disabled": True})
    assert (await api.call("GET", "/api/tenants", role="readonly")).status == 401


def test_the_token_cache_expires_entries() -> None:
    now = [0.0]
    cache = TokenCache(ttl_s=60, clock=lambda: now[0])
    user = User(1, "a", "admin")
    cache.put("og_x_y", user)
    assert cache.get("og_x_y") == (True, user)
    now[0] = 61
    assert cache.get("og_x_y") == (False, None)
    cache.put("og_bad", None)
    assert cache.get("og_bad") == (True, None)
    now[0] = 67
    assert cache.get("og_bad") == (False, None)


@pytest.mark.parametrize(("body", "error_id"), [
    (b"{not json", "bad_request"),
    (b"[1, 2]", "bad_request"),
    (b'{"id": 5, "name": "x"}', "bad_request"),
    (b'{"name": "x"}', "bad_request"),
])
async def test_bad_bodies_get_400_with_an_error_id(api: Api, body: bytes, error_id: str) -> None:
    response = await api.call("POST", "/api/tenants", data=body,
                              headers={"Content-Type": "application/json"})
    got = await response.json()
    assert response.status == 400
    assert got["error_id"] == error_id
    assert got["message"]


async def test_a_json_body_over_the_limit_gets_413(api: Api) -> None:
    big = b'{"id": "' + b"x" * (JSON_MAX_BYTES + 10) + b'", "name": "x"}'
    response = await api.call("POST", "/api/tenants", data=io.BytesIO(big))
    assert response.status == 413
    assert (await response.json())["error_id"] == "too_large"


async def test_not_found_and_conflict_carry_their_error_ids(api: Api) -> None:
    body = await api.json("GET", "/api/tenants/nope", status=404)
    assert body["error_id"] == "not_found" and body["kind"] == "tenant"
    body = await api.json("POST", "/api/tenants", status=409, json={"id": "t1", "name": "again"})
    assert body["error_id"] == "conflict"
    body = await api.json("GET", "/api/no/such/route", status=404)
    assert body["error_id"] == "not_found"


async def test_a_wrong_method_gets_405_as_json(api: Api) -> None:
    body = await api.json("PUT", "/api/tenants", status=405)
    assert body["error_id"] == "method_not_allowed"


async def test_health_needs_no_token(api: Api) -> None:
    body = await api.json("GET", "/health", role=None)
    assert body["status"] == "ok"


async def test_health_says_degraded_while_a_dialplans_pbx_global_is_wrong(api: Api) -> None:
    """A PBX whose OUTGUARD_PBX is not what outguard needs costs one more request per
    allowed call: /health names it (not yet checked: nothing to say)."""
    from outguard.server import DIALPLANS, dialplan_of

    app = api.client.app
    assert app is not None
    dialplan = dialplan_of(app, "bj-1")
    assert (await api.json("GET", "/health", role=None))["status"] == "ok"
    dialplan.seen("sh-1")
    body = await api.json("GET", "/health", role=None)
    assert body["status"] == "degraded"
    assert any(r.startswith("pbx bj-1: the dialplan's global OUTGUARD_PBX is 'sh-1'")
               for r in body["reasons"]), body
    dialplan.seen("")
    assert (await api.json("GET", "/health", role=None))["status"] == "ok"
    assert set(app[DIALPLANS]) == {"bj-1"}
