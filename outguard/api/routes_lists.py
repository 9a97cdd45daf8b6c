"""Lists (do-not-call, blacklists, consent ...) and their entries: search, add, remove,
bulk import (the request body is the file) and streamed export."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from dataclasses import asdict
from typing import Any

from aiohttp import web

from outguard.api import context as cx
from outguard import views
from outguard.api.core import (
    BadRequest,
    Param,
    field_of,
    json_body,
    ok,
    query_int,
    route,
    spooled_body,
    upload_name,
)
from outguard.api.routes_parties import e164_of, parse_time
from outguard.errors import ImportFailed, InvalidInput
from outguard.store.base import Entry
from rules.model import ListKind, Scope

NAME = Param("name", "path", required=True, description="list name")
NUMBERS_BODY = {"type": "object", "required": ["numbers"], "properties": {
    "numbers": {"type": "array", "items": {"type": "string"}, "maxItems": 10000},
    "expires_at": {"type": "string", "format": "date-time"},
    "source": {"type": "string"}, "reason": {"type": "string"},
    "evidence": {"type": "string"}}}
MAX_NUMBERS = 10_000


@route("GET", "/api/lists", tag="lists")
async def list_lists(request: web.Request) -> web.Response:
    """Every list with its kind, scope and entry count."""
    store = cx.store(request)

    def collect() -> list[dict[str, Any]]:
        return [views.list_record(r, store.store.count_entries(r.name))
                for r in store.store.list_lists()]

    return ok(await store.run(collect))


@route("POST", "/api/lists", tag="lists", role="admin", body={
    "type": "object", "required": ["name", "kind"], "properties": {
        "name": {"type": "string"},
        "kind": {"type": "string", "enum": [k.value for k in ListKind]},
        "scope": {"type": "string", "enum": [s.value for s in Scope]},
        "scope_key": {"type": "string"}, "description": {"type": "string"}}})
async def create_list(request: web.Request) -> web.Response:
    """Create a list."""
    data = await json_body(request)
    record = await cx.store(request).create_list(
        field_of(data, "name", required=True), field_of(data, "kind", required=True),
        scope=field_of(data, "scope", str, "global"),
        scope_key=field_of(data, "scope_key", str, None),
        description=field_of(data, "description", str, ""), actor=cx.actor(request))
    return ok(views.list_record(record, 0), 201)


@route("GET", "/api/lists/{name}", tag="lists", params=(NAME,))
async def get_list(request: web.Request) -> web.Response:
    """One list with its entry count."""
    store, name = cx.store(request), request.match_info["name"]
    record = await store.get_list(name)
    return ok(views.list_record(record, await store.count_entries(name)))


@route("DELETE", "/api/lists/{name}", tag="lists", role="admin", params=(NAME,))
async def delete_list(request: web.Request) -> web.Response:
    """Delete a list and its entries."""
    await cx.store(request).delete_list(request.match_info["name"], actor=cx.actor(request))
    return ok({"deleted": request.match_info["name"]})


@route("GET", "/api/lists/{name}/entries", tag="lists", heavy=True, params=(
    NAME, Param("q", description="digits the number contains"),
    Param("limit", type="integer", description="at most this many (default 100, at most 1000)"),
    Param("offset", type="integer", description="skip this many matches"),
    Param("sort", description="number (default) or -number (descending)"),
    Param("count", description="true: total is the list's size (without q; a scan of the"
          " list's index, ~0.4 s a million entries); else null")))
async def list_entries(request: web.Request) -> web.Response:
    """One page of a list's entries in number order, optionally only numbers containing
    some digits; ``more`` says whether another page follows."""
    store, name = cx.store(request), request.match_info["name"]
    q = "".join(ch for ch in request.query.get("q", "") if ch.isdigit())
    limit = query_int(request, "limit", 100, lo=1, hi=1000)
    offset = query_int(request, "offset", 0, lo=0, hi=100_000_000)
    sort = request.query.get("sort", "number")
    if sort not in ("number", "-number"):
        raise InvalidInput("sort must be number or -number", field="sort", value=sort)

    counted = not q and request.query.get("count", "").lower() in ("1", "true", "yes")

    def page() -> tuple[list[Entry], bool, int | None]:
        entries, more = store.store.page_entries(name, q=q, offset=offset, limit=limit,
                                                 descending=sort == "-number")
        return entries, more, store.store.count_entries(name) if counted else None

    entries, more, total = await store.run(page)
    mask = cx.mask(request)
    return ok({"entries": [views.entry(e, mask) for e in entries], "more": more,
               "offset": offset, "limit": limit, "total": total})


def _numbers(data: dict[str, Any]) -> list[str]:
    numbers: list[str] = field_of(data, "numbers", list, required=True)
    if not numbers or len(numbers) > MAX_NUMBERS or not all(isinstance(n, str) for n in numbers):
        raise BadRequest(f"numbers must be 1..{MAX_NUMBERS} strings", field="numbers")
    return numbers


@route("POST", "/api/lists/{name}/entries", tag="lists", role="admin", params=(NAME,),
       body=NUMBERS_BODY)
async def add_entries(request: web.Request) -> web.Response:
    """Add numbers to a list (existing entries are updated)."""
    data = await json_body(request)
    added = await cx.store(request).add_entries(
        request.match_info["name"], _numbers(data),
        expires_at=parse_time(field_of(data, "expires_at", str, None), "expires_at"),
        source=field_of(data, "source", str, "manual"), reason=field_of(data, "reason", str, None),
        evidence=field_of(data, "evidence", str, None), actor=cx.actor(request))
    return ok({"added": added})


@route("POST", "/api/lists/{name}/remove", tag="lists", role="admin", params=(NAME,), body={
    "type": "object", "required": ["numbers"],
    "properties": {"numbers": {"type": "array", "items": {"type": "string"}}}})
async def remove_entries(request: web.Request) -> web.Response:
    """Remove numbers from a list."""
    data = await json_body(request)
    removed = await cx.store(request).remove_entries(
        request.match_info["name"], _numbers(data), actor=cx.actor(request))
    return ok({"removed": removed})


@route("POST", "/api/lists/{name}/import", tag="lists", heavy=True, role="admin", body_type="text/plain",
       params=(NAME, Param("mode", description="replace (default) or add"),
               Param("format", description="auto (default), text, csv, us_registry"),
               Param("max_reject_ratio", description="refuse the import when more than this"
                     " share of lines is rejected (default 0.01 for replace, none for add)"),
               Param("released", description="ISO date the registry released this copy"
                     " (registers' age runs from it; default: the import time)"),
               Param("filename", description="the file's name, for messages (file:line);"
                     " default upload")))
async def import_list(request: web.Request) -> web.Response:
    """Import a file (the request body) into a list, all or nothing.

    Plain text, CSV or the US registry format; at most api.max_body_bytes. Answers with
    the counts and the first rejected lines.
    """
    store, name = cx.store(request), request.match_info["name"]
    mode = request.query.get("mode", "replace")
    fmt = request.query.get("format", "auto")
    if mode not in ("replace", "add"):
        raise InvalidInput("mode must be replace or add", field="mode")
    ratio = _ratio(request.query.get("max_reject_ratio"))
    released = _released(request.query.get("released"))
    await store.get_list(name)
    limit = cx.settings(request).api.max_body_bytes
    shown = upload_name(request.query.get("filename"))
    async with spooled_body(request, limit, "an import") as path:
        try:
            result = await store.import_list(
                name, path, mode=mode, fmt=fmt,
                region=cx.screener(request).policy.default_region, actor=cx.actor(request),
                source=f"api:{cx.actor(request)}", max_reject_ratio=ratio,
                released_at=released)
        except ImportFailed as exc:  # name the person's file, not the spool's
            raise ImportFailed(exc.message.replace(path, shown), path=shown, line=exc.line,
                               rejects=exc.rejects, rejected=exc.rejected) from None
    body = asdict(result)
    body["rejects"] = [{"line": r.line, "reason": r.reason, "text": r.text}
                       for r in result.rejects]
    return ok(body)


@route("GET", "/api/lists/{name}/export", tag="lists", heavy=True, role="admin", response_type="text/csv",
       params=(NAME, Param("format", description="csv (default) or json")))
async def export_list(request: web.Request) -> web.StreamResponse:
    """Download a list (full numbers: admins only)."""
    store, name = cx.store(request), request.match_info["name"]
    fmt = request.query.get("format", "csv")
    if fmt not in ("csv", "json"):
        raise InvalidInput("format must be csv or json", field="format")
    await store.get_list(name)
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8" if fmt == "csv" else "application/json",
        "Content-Disposition": f'attachment; filename="{name}.{fmt}"'})
    await response.prepare(request)
    loop = asyncio.get_running_loop()

    class Sink:
        """A text file whose writes go to the response, from the export's thread."""

        def __init__(self) -> None:
            self.buffer: list[str] = []
            self.size = 0

        def write(self, text: str) -> int:
            self.buffer.append(text)
            self.size += len(text)
            if self.size > 64 * 1024:
                self.flush()
            return len(text)

        def flush(self) -> None:
            data, self.buffer, self.size = "".join(self.buffer).encode(), [], 0
            if data:
                asyncio.run_coroutine_threadsafe(response.write(data), loop).result()

    def export() -> int:
        sink = Sink()
        n = store.store.export_list(name, sink, fmt)  # type: ignore[arg-type]
        sink.flush()
        return n

    await store.run(export)
    await response.write_eof()
    return response


@route("GET", "/api/numbers/{number}", tag="lists",
       params=(Param("number", "path", required=True),))
async def find_number(request: web.Request) -> web.Response:
    """Every list a number is on (expired entries included; see expires_at)."""
    e164 = e164_of(request, request.match_info["number"])
    entries = await cx.store(request).find_entries(e164)
    mask = cx.mask(request)
    return ok({"e164": mask(e164), "entries": [views.entry(e, mask) for e in entries]})


def _ratio(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise InvalidInput("max_reject_ratio must be a number from 0 to 1 (0.01 = 1%)",
                           field="max_reject_ratio", value=text)
    return value


def _released(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("released must be an ISO date or date-time, e.g. 2026-11-30",
                           field="released", value=text) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
