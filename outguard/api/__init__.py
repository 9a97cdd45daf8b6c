"""The admin HTTP API, ``/metrics`` and the dashboard, on the service's aiohttp app.

``setup_api(app)`` is called by ``outguard.server.build_app`` when the API part runs: it
adds the error middleware, registers every route of the table (``core.ROUTES``) behind the
token check, serves the OpenAPI document at ``/api/openapi.json`` and the dashboard at
``/``, and starts the metrics collector with the app (``cleanup_ctx``).

Authentication: ``Authorization: Bearer <token>`` on every route but ``/health``,
``/api/openapi.json`` and the dashboard's static files. ``/metrics`` needs a token too (any
role): give Prometheus one with ``authorization: {credentials_file: ...}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from outguard import dashboard
from outguard.api import context as cx

# importing these modules fills the route table
from outguard.api import (  # noqa: F401
    routes_calls,
    routes_consent,
    routes_deadlines,
    routes_enforcement,
    routes_health,
    routes_lists,
    routes_live,
    routes_parties,
    routes_replay,
)
from outguard.api.context import CLOSING, COLLECTOR
from outguard.api.core import (
    ROUTES,
    Handler,
    RouteSpec,
    LIMITS,
    TOKEN_KEY,
    Limits,
    TokenCache,
    authenticate,
    error_middleware,
    ok,
    require,
    route,
)
from outguard import version
from outguard.api.metrics import Collector, registry
from outguard.api.offload import OFFLOAD, Offload
from outguard.api.openapi import document
from outguard.server import SCREENER, SETTINGS, STORE

logger = logging.getLogger(__name__)


@route("GET", "/api/openapi.json", tag="meta", role=None)
async def openapi(request: web.Request) -> web.Response:
    """This document: every route of the admin API. No token needed."""
    return ok(document(ROUTES, version()))


def guarded(spec: RouteSpec) -> Handler:
    """The handler behind the token check for its role."""
    if spec.role is None:
        return spec.handler

    async def handler(request: web.Request) -> web.StreamResponse:
        user = await authenticate(request, request.app[cx.TOKENS], request.app[STORE].verify_token)
        require(user, spec.role or "admin")
        request[cx.USER] = user
        if spec.heavy:
            async with request.app[LIMITS].queued("work", request[TOKEN_KEY]):
                return await spec.handler(request)
        return await spec.handler(request)

    handler.__name__ = spec.handler.__name__
    handler.__doc__ = spec.handler.__doc__
    return handler


async def _api_ctx(app: web.Application) -> AsyncIterator[None]:
    offload = app[OFFLOAD] = Offload()
    collector = Collector()
    app[COLLECTOR] = collector
    task = asyncio.get_running_loop().create_task(collector.run(app[SCREENER].events))
    yield
    app[CLOSING].set()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await asyncio.to_thread(offload.close)


async def _closing(app: web.Application) -> None:
    """Let the live streams end before the server closes their connections."""
    app[CLOSING].set()


def setup_api(app: web.Application) -> None:
    """Register the API, /metrics and the dashboard on ``app`` (before it starts)."""
    app[cx.TOKENS] = TokenCache()
    api = app[SETTINGS].api
    app[LIMITS] = Limits(api.max_work_per_token, api.max_work, api.max_streams_per_token,
                         api.max_streams, api.max_work_queue_per_token, api.max_work_wait_s)
    app[cx.REGISTRY] = registry()
    app[CLOSING] = asyncio.Event()
    app[routes_replay.REPLAYING] = asyncio.Lock()
    app.middlewares.append(error_middleware)
    app.cleanup_ctx.append(_api_ctx)
    app.on_shutdown.append(_closing)
    for spec in ROUTES:
        app.router.add_route(spec.method, spec.path, guarded(spec))
    dashboard.setup(app)
