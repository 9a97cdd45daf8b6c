"""Tenants, accounts, the channel->account map, caller IDs, users and tokens."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from outguard.api import context as cx
from outguard import views
from outguard.api.core import BadRequest, Param, field_of, id_param, json_body, ok, route
from outguard.errors import InvalidInput
from outguard.store.base import ACCOUNT_KINDS, MATCH_KINDS, ROLES, VERIFICATIONS
from rules.errors import NumberError
from rules.numbers import normalise

STATE_BODY = {"type": "object", "required": ["state"],
              "properties": {"state": {"type": "string", "enum": ["active", "disabled"]}}}
TENANT_PARAM = Param("tenant", description="only this tenant's")


def parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"field {name!r} must be an ISO 8601 time", field=name) from None
    if at.tzinfo is None:
        raise BadRequest(f"field {name!r} needs a time zone (e.g. +08:00 or Z)", field=name)
    return at


def e164_of(request: web.Request, raw: str) -> str:
    region = cx.screener(request).policy.default_region
    try:
        return normalise(raw, region)
    except NumberError as exc:
        raise InvalidInput(f"{raw!r}: {exc}", field="number") from None


# -- tenants -------------------------------------------------------------------------------

@route("GET", "/api/tenants", tag="parties")
async def list_tenants(request: web.Request) -> web.Response:
    """List tenants (organisations, 机构)."""
    return ok([views.tenant(t) for t in await cx.store(request).list_tenants()])


@route("POST", "/api/tenants", tag="parties", role="admin", body={
    "type": "object", "required": ["id", "name"],
    "properties": {"id": {"type": "string"}, "name": {"type": "string"}}})
async def create_tenant(request: web.Request) -> web.Response:
    """Create a tenant."""
    data = await json_body(request)
    tenant = await cx.store(request).create_tenant(
        field_of(data, "id", required=True), field_of(data, "name", required=True),
        actor=cx.actor(request))
    return ok(views.tenant(tenant), 201)


@route("GET", "/api/tenants/{id}", tag="parties", params=(Param("id", "path", required=True),))
async def get_tenant(request: web.Request) -> web.Response:
    """One tenant."""
    return ok(views.tenant(await cx.store(request).get_tenant(request.match_info["id"])))


@route("PATCH", "/api/tenants/{id}", tag="parties", role="admin",
       params=(Param("id", "path", required=True),), body=STATE_BODY)
async def set_tenant_state(request: web.Request) -> web.Response:
    """Set a tenant's state (active or disabled)."""
    data = await json_body(request)
    tenant = await cx.store(request).set_tenant_state(
        request.match_info["id"], field_of(data, "state", required=True), actor=cx.actor(request))
    return ok(views.tenant(tenant))


# -- accounts ------------------------------------------------------------------------------

@route("GET", "/api/accounts", tag="parties", params=(TENANT_PARAM,))
async def list_accounts(request: web.Request) -> web.Response:
    """List accounts (agent seats, campaigns, trunks)."""
    accounts = await cx.store(request).list_accounts(request.query.get("tenant") or None)
    return ok([views.account(a) for a in accounts])


@route("POST", "/api/accounts", tag="parties", role="admin", body={
    "type": "object", "required": ["id", "tenant"],
    "properties": {"id": {"type": "string"}, "tenant": {"type": "string"},
                   "kind": {"type": "string", "enum": list(ACCOUNT_KINDS)},
                   "name": {"type": "string"}}})
async def create_account(request: web.Request) -> web.Response:
    """Create an account in a tenant."""
    data = await json_body(request)
    account = await cx.store(request).create_account(
        field_of(data, "id", required=True), field_of(data, "tenant", required=True),
        kind=field_of(data, "kind", str, "agent"), name=field_of(data, "name", str, ""),
        actor=cx.actor(request))
    return ok(views.account(account), 201)


@route("GET", "/api/accounts/{id}", tag="parties", params=(Param("id", "path", required=True),))
async def get_account(request: web.Request) -> web.Response:
    """One account."""
    return ok(views.account(await cx.store(request).get_account(request.match_info["id"])))


@route("PATCH", "/api/accounts/{id}", tag="parties", role="admin",
       params=(Param("id", "path", required=True),), body=STATE_BODY)
async def set_account_state(request: web.Request) -> web.Response:
    """Set an account's administrative state (active or disabled)."""
    data = await json_body(request)
    account = await cx.store(request).set_account_state(
        request.match_info["id"], field_of(data, "state", required=True), actor=cx.actor(request))
    return ok(views.account(account))


# -- channel -> account map ----------------------------------------------------------------

@route("GET", "/api/mappings", tag="parties")
async def list_mappings(request: web.Request) -> web.Response:
    """How channels map to accounts when OUTGUARD_ACCOUNT is not set."""
    return ok([views.mapping(m) for m in await cx.store(request).list_account_mappings()])


@route("POST", "/api/mappings", tag="parties", role="admin", body={
    "type": "object", "required": ["match_kind", "pattern", "account"],
    "properties": {"match_kind": {"type": "string", "enum": list(MATCH_KINDS)},
                   "pattern": {"type": "string"}, "account": {"type": "string"},
                   "priority": {"type": "integer"}}})
async def add_mapping(request: web.Request) -> web.Response:
    """Map an endpoint, channel prefix or caller ID to an account."""
    data = await json_body(request)
    m = await cx.store(request).add_account_mapping(
        field_of(data, "match_kind", required=True), field_of(data, "pattern", required=True),
        field_of(data, "account", required=True), priority=field_of(data, "priority", int, 0),
        actor=cx.actor(request))
    return ok(views.mapping(m), 201)


@route("DELETE", "/api/mappings/{id}", tag="parties", role="admin",
       params=(Param("id", "path", "integer", required=True),))
async def remove_mapping(request: web.Request) -> web.Response:
    """Remove an account mapping."""
    mapping_id = id_param(request, "mapping id")
    await cx.store(request).remove_account_mapping(mapping_id, actor=cx.actor(request))
    return ok({"removed": mapping_id})


# -- caller IDs ----------------------------------------------------------------------------

@route("GET", "/api/caller-ids", tag="parties", params=(TENANT_PARAM,))
async def list_caller_ids(request: web.Request) -> web.Response:
    """List caller IDs with their real-name verification and state."""
    rows = await cx.store(request).list_caller_ids(request.query.get("tenant") or None)
    return ok([views.caller_id(c, cx.mask(request)) for c in rows])


@route("GET", "/api/caller-ids/{number}", tag="parties",
       params=(Param("number", "path", required=True),))
async def get_caller_id(request: web.Request) -> web.Response:
    """One caller ID."""
    c = await cx.store(request).get_caller_id(e164_of(request, request.match_info["number"]))
    return ok(views.caller_id(c, cx.mask(request)))


@route("PUT", "/api/caller-ids/{number}", tag="parties", role="admin",
       params=(Param("number", "path", required=True),), body={
           "type": "object", "required": ["tenant"],
           "properties": {"tenant": {"type": "string"}, "type": {"type": "string"},
                          "verification": {"type": "string", "enum": list(VERIFICATIONS)},
                          "verified_until": {"type": "string", "format": "date-time"},
                          "state": {"type": "string", "enum": ["active", "disabled"]}}})
async def put_caller_id(request: web.Request) -> web.Response:
    """Add or update a caller ID (owner tenant, verification, state)."""
    data = await json_body(request)
    c = await cx.store(request).upsert_caller_id(
        e164_of(request, request.match_info["number"]), field_of(data, "tenant", required=True),
        type=field_of(data, "type", str, "unknown"),
        verification=field_of(data, "verification", str, "missing"),
        verified_until=parse_time(field_of(data, "verified_until", str, None), "verified_until"),
        state=field_of(data, "state", str, "active"), actor=cx.actor(request))
    return ok(views.caller_id(c, cx.mask(request)))


# -- users and tokens ----------------------------------------------------------------------

@route("GET", "/api/me", tag="users")
async def me(request: web.Request) -> web.Response:
    """The user the presented token belongs to."""
    return ok(views.user(request[cx.USER]))


@route("GET", "/api/users", tag="users", role="admin")
async def list_users(request: web.Request) -> web.Response:
    """List API users."""
    return ok([views.user(u) for u in await cx.store(request).list_users()])


@route("POST", "/api/users", tag="users", role="admin", body={
    "type": "object", "required": ["name", "role"],
    "properties": {"name": {"type": "string"}, "role": {"type": "string", "enum": list(ROLES)}}})
async def create_user(request: web.Request) -> web.Response:
    """Create an API user with a role (admin, reviewer, readonly)."""
    data = await json_body(request)
    u = await cx.store(request).create_user(
        field_of(data, "name", required=True), field_of(data, "role", required=True),
        actor=cx.actor(request))
    return ok(views.user(u), 201)


@route("PATCH", "/api/users/{name}", tag="users", role="admin",
       params=(Param("name", "path", required=True),), body={
           "type": "object", "required": ["disabled"],
           "properties": {"disabled": {"type": "boolean"}}})
async def set_user_disabled(request: web.Request) -> web.Response:
    """Disable or enable a user (their tokens stop working within a minute)."""
    data = await json_body(request)
    u = await cx.store(request).set_user_disabled(
        request.match_info["name"], field_of(data, "disabled", bool, required=True),
        actor=cx.actor(request))
    request.app[cx.TOKENS].clear()
    return ok(views.user(u))


@route("POST", "/api/tokens", tag="users", role="admin", body={
    "type": "object", "required": ["user"],
    "properties": {"user": {"type": "string"}, "label": {"type": "string"}}})
async def create_token(request: web.Request) -> web.Response:
    """Create an API token for a user; the secret is in this answer only."""
    data = await json_body(request)
    new = await cx.store(request).create_token(
        field_of(data, "user", required=True), label=field_of(data, "label", str, ""),
        actor=cx.actor(request))
    return ok({"id": new.id, "token": new.token, "user": views.user(new.user)}, 201)


@route("GET", "/api/tokens", tag="users", role="admin", params=(
    Param("user", description="only this user's tokens"),))
async def list_tokens(request: web.Request) -> web.Response:
    """List API tokens, newest first: id, user, role, label, when created and revoked
    (never a secret: only hashes are stored)."""
    from outguard.store.maintenance import list_tokens as listed

    store = cx.store(request)
    rows = await store.run(listed, store.store, request.query.get("user") or None)
    return ok([views.token(t) for t in rows])


@route("DELETE", "/api/tokens/{id}", tag="users", role="admin",
       params=(Param("id", "path", required=True),))
async def revoke_token(request: web.Request) -> web.Response:
    """Revoke a token (takes effect at once in this process)."""
    await cx.store(request).revoke_token(request.match_info["id"], actor=cx.actor(request))
    request.app[cx.TOKENS].clear()
    return ok({"revoked": request.match_info["id"]})
