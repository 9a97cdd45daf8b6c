"""The OpenAPI 3.1 document of the admin API, built from the route table (``core.ROUTES``)
plus the routes the server registers itself (``/health``) and the dashboard."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from outguard.api.core import RouteSpec

ERROR = {"type": "object", "required": ["error_id", "message"], "properties": {
    "error_id": {"type": "string", "description": "stable machine-readable code"},
    "message": {"type": "string"}}, "additionalProperties": True}

#: routes served outside the table, documented by hand
EXTRA: dict[str, dict[str, Any]] = {
    "/health": {"get": {
        "summary": "Liveness: screening status, connected parts, live calls. No token.",
        "tags": ["live"], "security": [],
        "responses": {"200": {"description": "OK", "content": {"application/json": {
            "schema": {"type": "object"}}}}}}},
    "/": {"get": {
        "summary": "The dashboard (HTML; it asks for a token and keeps it in sessionStorage).",
        "tags": ["dashboard"], "security": [],
        "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}}},
    "/dashboard/{file}": {"get": {
        "summary": "The dashboard's static files (JS, CSS). No token.",
        "tags": ["dashboard"], "security": [],
        "parameters": [{"name": "file", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "file"}, "404": {"description": "no such file"}}}},
}

ERRORS = {
    "400": "bad_request / invalid_input: the body or a parameter is wrong",
    "401": "auth_failed: no token, or an unknown, revoked or wrong one",
    "403": "forbidden: the token's role may not do this",
    "404": "not_found",
    "409": "conflict: exists already, or already decided",
    "413": "too_large: the body is over the limit",
    "422": "import_failed / policy_invalid",
    "503": "store_error / screening_unavailable",
}


def _operation(spec: RouteSpec) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": spec.handler.__name__, "summary": spec.summary, "tags": [spec.tag],
        "parameters": [
            {"name": p.name, "in": p.where, "required": p.required or p.where == "path",
             "description": p.description, "schema": {"type": p.type}}
            for p in spec.params],
        "responses": {"200": {"description": "OK", "content": {spec.response_type: {}}}},
    }
    if spec.description:
        op["description"] = spec.description
    if spec.method == "POST" and spec.path in ("/api/tenants", "/api/accounts", "/api/lists",
                                               "/api/users", "/api/tokens", "/api/mappings"):
        op["responses"]["201"] = {"description": "created", "content": {"application/json": {}}}
    if spec.role is None:
        op["security"] = []
    else:
        op["x-required-role"] = spec.role
        op["description"] = (op.get("description", "") + f" Role: {spec.role} or higher.").strip()
    if spec.body is not None or spec.body_type != "application/json":
        op["requestBody"] = {"required": True, "content": {
            spec.body_type: {"schema": dict(spec.body) if spec.body else {"type": "string"}}}}
    for status, text in ERRORS.items():
        if status == "401" and spec.role is None:
            continue
        op["responses"][status] = {"description": text, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return op


def document(routes: Iterable[RouteSpec], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for spec in routes:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec)
    paths.update(EXTRA)
    return {
        "openapi": "3.1.0",
        "info": {"title": "outguard admin API", "version": version, "description": (
            "Manage screening (lists, parties, policy), enforcement (suspensions, appeals, "
            "complaints, risk), read reports and follow decisions live. Every route but "
            "/health, this document and the dashboard's files needs "
            "`Authorization: Bearer <token>` (create one with `outguard tokens create`). "
            "Roles: readonly < reviewer < admin. Errors are JSON: "
            '`{"error_id": ..., "message": ...}`.')},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR},
        },
        "paths": dict(sorted(paths.items())),
    }
