"""The live stream (Server-Sent Events at ``/api/events``) and ``/metrics`` (Prometheus).

Both read ``Screener.events``: the stream subscribes per client; the metrics come from the
collector (``metrics.Collector``) plus one query for the active suspensions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ari_app.app import StasisApp
from outguard.api import context as cx
from outguard import views
from outguard.api.core import LIMITS, TOKEN_KEY, route
from outguard.api.metrics import CONTENT_TYPE, Scrape, render
from outguard.enforcement.deadlines import deadline_state
from outguard.events import wire
from outguard.server import (
    CLAIMS,
    ENFORCER,
    FEED_FIGURES,
    PARTS,
    STASIS_BY_PBX,
    split_part,
    store_health,
)

logger = logging.getLogger(__name__)

KEEPALIVE_S = 15.0


@route("GET", "/metrics", tag="live", response_type="text/plain")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics: decisions by verdict and reason, decision latency histogram,
    ARI/AGI/AMI connection state, reconnects and round trips, screening failures, store
    write errors, calls in progress, active suspensions, open complaints by deadline
    state, caller-ID health (tasks, throttled caller IDs, warnings), the snapshot, the
    process."""
    screener = cx.screener(request)
    parts = request.app[PARTS]
    connected = {split_part(name): bool(getattr(part, "connected", True))
                 for name, part in parts.items()}
    reconnects = {split_part(name): int(part.reconnects) for name, part in parts.items()
                  if hasattr(part, "reconnects")}
    by_pbx: dict[str, int] = {}
    for call in screener.live.calls():
        by_pbx[call.pbx] = by_pbx.get(call.pbx, 0) + 1
    active = await cx.store(request).list_suspensions(active_at=datetime.now(UTC))
    suspensions = {"account": 0, "caller_id": 0, "tenant": 0}
    for s in active:
        suspensions[s.party_kind.value] = suspensions.get(s.party_kind.value, 0) + 1
    now = time.time()
    complaints: dict[tuple[str, str], int] = {}
    unknown: dict[str, int] = {}
    for c in await cx.store(request).open_complaints_due():
        key = (c.source.lower(), deadline_state(c, now))
        complaints[key] = complaints.get(key, 0) + 1
        if c.calendar_unknown:
            unknown[key[0]] = unknown.get(key[0], 0) + 1
    snap = screener.snapshot
    claims = request.app.get(CLAIMS)
    stasis: dict[str, StasisApp] = request.app.get(STASIS_BY_PBX, {})
    enforcer = request.app.get(ENFORCER)
    health = await enforcer.health_summary() if enforcer is not None else {}
    scrape = Scrape(
        connected=connected, reconnects=reconnects, live_calls=screener.live_calls(),
        live_by_pbx=by_pbx,
        suspensions=suspensions,
        snapshot={k: float(v) for k, v in snap.stats.items()} if snap is not None else {},
        snapshot_age_s=(round(time.time() - snap.built_at.timestamp(), 3)
                        if snap is not None else None),
        store=store_health(request.app), complaints=complaints, health=health,
        calendar_unknown=unknown,
        caps=screener.shared.health if screener.shared is not None else None,
        feed=request.app[FEED_FIGURES]() if FEED_FIGURES in request.app else None,
        pbx_refused=dict(claims.refused) if claims is not None else None,
        pbx_conflicts=_by_pbx(claims.conflicts) if claims is not None else {},
        ari_replaced={pbx: a.replaced.times for pbx, a in stasis.items()},
        ari_standing_aside={pbx: int(bool(a.replaced.problem)) for pbx, a in stasis.items()})
    body = render(request.app[cx.REGISTRY], request.app[cx.COLLECTOR], scrape)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE,
                                            "X-Content-Type-Options": "nosniff"})


def _by_pbx(conflicts: dict[tuple[str, str], str]) -> dict[str, int]:
    """How many targets of each PBX a conflict keeps unused now."""
    counts: dict[str, int] = {}
    for pbx, _kind in conflicts:
        counts[pbx] = counts.get(pbx, 0) + 1
    return counts


@route("GET", "/api/events", tag="live", response_type="text/event-stream")
async def events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: every call event (decision, answered, outcome), snapshot swap
    and enforcement event as it happens (``event:`` is the type, ``data:`` the JSON, numbers masked).

    Browsers' EventSource cannot send a token: read the stream with fetch().
    """
    with request.app[LIMITS].hold("streams", request[TOKEN_KEY]):  # 429 over the bound
        return await _stream(request)


async def _stream(request: web.Request) -> web.StreamResponse:
    mask = cx.mask(request)
    closing = request.app[cx.CLOSING]
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    stop = asyncio.ensure_future(closing.wait())
    get: asyncio.Future[Any] | None = None
    try:
        with cx.screener(request).events.subscribe(500) as sub:
            await response.write(b"retry: 3000\n: connected\n\n")
            while not closing.is_set():
                get = asyncio.ensure_future(sub.get())
                done, _ = await asyncio.wait({get, stop}, timeout=KEEPALIVE_S,
                                             return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    if not closing.is_set():
                        await response.write(b": keepalive\n\n")
                    continue
                if sub.missed:
                    await response.write(_sse({"type": "missed", "count": sub.missed}))
                    sub.missed = 0
                await response.write(_sse(views.masked(wire(get.result()), mask)))
    except ConnectionResetError:
        pass
    finally:
        stop.cancel()
        if get is not None:
            get.cancel()
    return response


def _sse(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event.get('type', 'message')}\ndata: {data}\n\n".encode()
