"""The admin API's plumbing: the route table, token authentication, JSON bodies and the
translation of ``OutguardError`` into HTTP error bodies (``{"error_id", "message"}``).

Handlers declare themselves with ``@route(method, path, role=..., tag=...)``; the table is
what ``setup_api`` registers and what the OpenAPI document is built from, so a route cannot
be served without being documented. Every route but ``/health`` and the dashboard's static
files needs ``Authorization: Bearer <token>`` with at least the declared role
(readonly < reviewer < admin).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from outguard.errors import (
    AuthFailed,
    Conflict,
    ImportFailed,
    InvalidInput,
    NotFound,
    OutguardError,
)
from outguard.store.base import User
from rules.errors import PolicyError

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ROLE_RANK: Mapping[str, int] = {"readonly": 0, "reviewer": 1, "admin": 2}
#: largest JSON request body (list imports have their own, larger limit)
JSON_MAX_BYTES = 1024 * 1024
TOKEN_TTL_S = 60.0
FAILED_TTL_S = 5.0
CACHE_MAX = 4096

STATUS: Mapping[type[OutguardError], int] = {
    NotFound: 404, Conflict: 409, InvalidInput: 400, AuthFailed: 401, ImportFailed: 422,
}


class Forbidden(OutguardError):
    """The token is valid but its role may not do this."""

    error_id = "forbidden"


class BadRequest(OutguardError):
    """The request itself is malformed (not JSON, wrong field type, missing field)."""

    error_id = "bad_request"


class TooLarge(OutguardError):
    """The request body is larger than the route accepts."""

    error_id = "too_large"


class TooBusy(OutguardError):
    """The token (or the service) already runs as much heavy work or as many live
    streams as allowed; retry later (429 with Retry-After)."""

    error_id = "too_many_requests"


class Limits:
    """Bounds on what API clients may run at once, so that no client (the lowest role
    included) can slow the calls: heavy requests and live streams, per token and in all.

    Live streams over a bound are refused at once (``TooBusy``). A heavy request over a
    bound waits in a short queue (at most ``queue_per_token`` waiting per token, at most
    ``wait_s`` seconds each) so that a page asking for a few things at once is served
    one after another; past either bound it is refused. Waiting costs nothing on the loop.
    """

    def __init__(self, work_per_token: int = 1, work: int = 4, streams_per_token: int = 4,
                 streams: int = 32, queue_per_token: int = 8, wait_s: float = 10.0) -> None:
        self.bounds = {"work": (work_per_token, work), "streams": (streams_per_token, streams)}
        self.queue_per_token = queue_per_token
        self.wait_s = wait_s
        self._held: dict[str, dict[str, int]] = {"work": {}, "streams": {}}
        self._waiting: dict[str, int] = {}
        self._freed: asyncio.Condition | None = None

    def held(self, kind: str, token_key: str | None = None) -> int:
        held = self._held[kind]
        return held.get(token_key, 0) if token_key is not None else sum(held.values())

    def waiting(self, token_key: str | None = None) -> int:
        """Heavy requests queued for a slot (of one token, or in all)."""
        if token_key is not None:
            return self._waiting.get(token_key, 0)
        return sum(self._waiting.values())

    def _refusal(self, kind: str, token_key: str) -> TooBusy | None:
        per_token, total = self.bounds[kind]
        what = "heavy requests" if kind == "work" else "live streams"
        if self.held(kind, token_key) >= per_token:
            return TooBusy(f"this token already has {per_token} {what} running; retry when "
                           "one has finished", limit=per_token)
        if self.held(kind) >= total:
            return TooBusy(f"the service already runs {total} {what}; retry shortly",
                           limit=total)
        return None

    @contextlib.contextmanager
    def hold(self, kind: str, token_key: str) -> Iterator[None]:
        """Take a slot now or raise ``TooBusy``."""
        refusal = self._refusal(kind, token_key)
        if refusal is not None:
            raise refusal
        held = self._held[kind]
        held[token_key] = held.get(token_key, 0) + 1
        try:
            yield
        finally:
            left = held[token_key] - 1
            if left:
                held[token_key] = left
            else:
                del held[token_key]
            if self._freed is not None:
                self._notify()

    def _notify(self) -> None:
        freed = self._freed
        assert freed is not None

        async def wake() -> None:
            async with freed:
                freed.notify_all()

        asyncio.get_running_loop().create_task(wake())

    @contextlib.asynccontextmanager
    async def queued(self, kind: str, token_key: str) -> AsyncIterator[None]:
        """Take a slot, waiting in the bounded queue for one if need be."""
        if self._refusal(kind, token_key) is None:
            with self.hold(kind, token_key):
                yield
            return
        if self.waiting(token_key) >= self.queue_per_token:
            raise TooBusy(f"this token already has {self.queue_per_token} heavy requests"
                          " waiting; retry when one has finished", limit=self.queue_per_token)
        if self._freed is None:
            self._freed = asyncio.Condition()
        freed = self._freed
        self._waiting[token_key] = self._waiting.get(token_key, 0) + 1
        try:
            async with asyncio.timeout(self.wait_s), freed:
                await freed.wait_for(lambda: self._refusal(kind, token_key) is None)
        except TimeoutError:
            refusal = self._refusal(kind, token_key)
            why = refusal.message if refusal is not None else "no slot came free"
            raise TooBusy(f"{why} (waited {self.wait_s:g} s)",
                          limit=self.bounds[kind][0]) from None
        finally:
            left = self._waiting[token_key] - 1
            if left:
                self._waiting[token_key] = left
            else:
                del self._waiting[token_key]
        with self.hold(kind, token_key):
            yield


@dataclass(frozen=True)
class Param:
    """A query or path parameter, for the OpenAPI document."""

    name: str
    where: str = "query"  # query | path
    type: str = "string"
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    handler: Handler
    role: str | None  # None: no token needed
    tag: str
    summary: str
    description: str
    params: tuple[Param, ...] = ()
    body: Mapping[str, Any] | None = None  # JSON schema of the request body
    body_type: str = "application/json"
    response_type: str = "application/json"
    responses: Mapping[str, str] = field(default_factory=dict)
    heavy: bool = False  # counts against Limits "work" (see guarded())


ROUTES: list[RouteSpec] = []


def route(
    method: str, path: str, *, tag: str, role: str | None = "readonly",
    params: tuple[Param, ...] = (), body: Mapping[str, Any] | None = None,
    body_type: str = "application/json", response_type: str = "application/json",
    heavy: bool = False,
) -> Callable[[Handler], Handler]:
    """Declare an API route; the handler's docstring is its documentation."""
    if role is not None and role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")

    def register(handler: Handler) -> Handler:
        doc = (handler.__doc__ or "").strip()
        summary, _, rest = doc.partition("\n")
        ROUTES.append(RouteSpec(
            method, path, handler, role, tag, summary.strip(), " ".join(rest.split()),
            params, body, body_type, response_type, heavy=heavy,
        ))
        return handler

    return register


# -- authentication ----------------------------------------------------------------------

class TokenCache:
    """Verified tokens, keyed by their SHA-256, for ``TOKEN_TTL_S`` (scrypt costs ~40 ms).

    Failures are remembered for ``FAILED_TTL_S`` so that a client retrying a bad token does
    not burn a core. A revoked token keeps working for at most ``TOKEN_TTL_S``.
    """

    def __init__(self, ttl_s: float = TOKEN_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: dict[str, tuple[float, User | None]] = {}

    @staticmethod
    def key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> tuple[bool, User | None]:
        """(known, user): known False means "verify it"; user None means "it failed"."""
        hit = self._entries.get(self.key(token))
        if hit is None or hit[0] < self.clock():
            return False, None
        return True, hit[1]

    def put(self, token: str, user: User | None) -> None:
        if len(self._entries) >= CACHE_MAX:
            now = self.clock()
            self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
            if len(self._entries) >= CACHE_MAX:
                self._entries.clear()
        ttl = self.ttl_s if user is not None else FAILED_TTL_S
        self._entries[self.key(token)] = (self.clock() + ttl, user)

    def clear(self) -> None:
        self._entries.clear()


Verify = Callable[[str], Awaitable[User]]
#: the SHA-256 of the request's token: the key of its per-token limits
TOKEN_KEY = web.RequestKey("token_key", str)
LIMITS = web.AppKey("limits", Limits)


async def authenticate(request: web.Request, cache: TokenCache, verify: Verify) -> User:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthFailed("this route needs Authorization: Bearer <token>")
    token = token.strip()
    if not (token.isascii() and token.isprintable()):  # tokens are og_ + URL-safe base64
        raise AuthFailed("the token is unknown, revoked or wrong")
    known, user = cache.get(token)
    if not known:
        try:
            user = await verify(token)
        except AuthFailed:
            user = None
        cache.put(token, user)
    if user is None:
        raise AuthFailed("the token is unknown, revoked or wrong")
    request[TOKEN_KEY] = cache.key(token)
    return user


def require(user: User, role: str) -> None:
    if ROLE_RANK.get(user.role, -1) < ROLE_RANK[role]:
        raise Forbidden(f"this needs the {role} role; {user.name!r} is {user.role}",
                        needed=role, role=user.role)


# -- bodies and parameters ---------------------------------------------------------------

async def read_body(request: web.Request, limit: int, what: str) -> bytes:
    """The whole request body, or TooLarge (413) as soon as it passes ``limit`` bytes
    (never a body silently cut at the limit)."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"{what} may be at most {limit} bytes", limit=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"{what} may be at most {limit} bytes", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


#: bodies up to this size are parsed on the loop; larger ones in a thread
INLINE_JSON_BYTES = 64 * 1024


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        raise BadRequest("the body is JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (at most JSON_MAX_BYTES)."""
    raw = await read_body(request, JSON_MAX_BYTES, "a JSON body")
    if not raw.strip():
        return {}
    if len(raw) > INLINE_JSON_BYTES:
        data = await asyncio.to_thread(_loads, raw)
    else:
        data = _loads(raw)
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def field_of(data: Mapping[str, Any], name: str, kind: type | tuple[type, ...] = str,
             default: Any = ..., *, required: bool = False) -> Any:
    """One field of a JSON body, type-checked; BadRequest names the field."""
    if name not in data or data[name] is None:
        if required or default is ...:
            raise BadRequest(f"field {name!r} is required", field=name)
        return default
    value = data[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise BadRequest(f"field {name!r} must be {names}", field=name)
    return value


@contextlib.asynccontextmanager
async def spooled_body(
    request: web.Request, limit: int, what: str, suffix: str = ".txt"
) -> AsyncIterator[str]:
    """Stream the request body into a temporary file of at most ``limit`` bytes and yield
    its path; the file is removed afterwards. A larger body raises TooLarge (413)."""
    fd, path = tempfile.mkstemp(prefix="outguard-upload-", suffix=suffix)
    try:
        size = 0
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.content.iter_chunked(256 * 1024):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"{what} may be at most {limit} bytes", limit=limit)
                await asyncio.to_thread(f.write, chunk)
        yield path
    finally:
        os.unlink(path)


def upload_name(text: str | None) -> str:
    """An uploaded file's own name for messages (``?filename=``): its last path part,
    printable, at most 120 characters; ``upload`` when none is given."""
    name = (text or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable())[:120]
    return name or "upload"


def id_param(request: web.Request, what: str, name: str = "id") -> int:
    """A row id from the path: a positive integer SQLite can hold."""
    text = request.match_info[name]
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**63:
        raise BadRequest(f"{what} must be a positive integer", field=name)
    return int(text)


def query_int(request: web.Request, name: str, default: int, *, lo: int = 0,
              hi: int = 1_000_000) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text) if len(text) <= 30 else int("x")
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be an integer", field=name) from None
    if not lo <= value <= hi:
        raise BadRequest(f"query parameter {name!r} must be in {lo}..{hi}", field=name)
    return value


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


# -- errors ------------------------------------------------------------------------------

def status_of(exc: OutguardError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return {"forbidden": 403, "bad_request": 400, "too_large": 413, "too_many_requests": 429,
            "store_error": 503, "screening_unavailable": 503,
            "enforcement_unavailable": 503, "test_call_failed": 502, "ari_unavailable": 502,
            "ari_error": 502, "channel_gone": 502}.get(exc.error_id, 500)


def error_response(status: int, error_id: str, message: str, **details: Any) -> web.Response:
    body = {"error_id": error_id, "message": message, **details}
    return ok(body, status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as ``{"error_id", "message", ...}`` with the matching status."""
    try:
        return await handler(request)
    except OutguardError as exc:
        status = status_of(exc)
        headers = ({"WWW-Authenticate": 'Bearer realm="outguard"'} if status == 401
                   else {"Retry-After": "1"} if status == 429 else None)
        response = ok(_jsonable(exc.to_dict()), status)
        if headers:
            response.headers.update(headers)
        return response
    except PolicyError as exc:
        return error_response(422, "policy_invalid", str(exc), issues=[
            {"file": i.file, "line": i.line, "key": i.key, "message": i.message}
            for i in exc.issues])
    except web.HTTPRequestEntityTooLarge as exc:
        return error_response(413, "too_large", exc.text or "request body too large")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error_id = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        return error_response(exc.status, error_id, exc.reason)
    except (ConnectionResetError, web.HTTPServerError):
        raise
    except Exception:
        logger.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", "unexpected error; see the server log")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
