"""Policy replay over HTTP: the request body is a candidate policy (TOML); the answer says
which logged calls would change verdict. The replay runs in a process of its own (it is
minutes of CPU for a large call log, which must not share the call path's interpreter);
one replay at a time per service (409 while one runs)."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web

from outguard.api import context as cx
from outguard.api.core import JSON_MAX_BYTES, Param, TooLarge, ok, query_int, route
from outguard.errors import Conflict
from rules.policy import parse_policy

REPLAYING = web.AppKey("replaying", asyncio.Lock)
MAX_DAYS = 31


def run_replay(store_path: str, text: str, base_dir: str | None, since: float, until: float,
               examples: int, show_numbers: bool) -> dict[str, Any]:
    """In the replay process: open the store, parse the candidate, replay."""
    from outguard import privacy
    from outguard.replay import replay
    from outguard.store.sqlite import SQLiteStore

    privacy.show_numbers(show_numbers)
    policy = parse_policy(text, "<candidate>", Path(base_dir) if base_dir else None)
    store = SQLiteStore(store_path)
    try:
        return replay(store, policy, since, until, examples=examples,
                      mask=privacy.mask).as_dict()
    finally:
        store.close()


@route("POST", "/api/policy/replay", tag="policy", role="reviewer", body_type="text/plain",
       params=(Param("days", type="integer", description="the last N days (default 7, at most 31)"),
               Param("examples", type="integer", description="examples per change (default 3)")))
async def replay_policy(request: web.Request) -> web.Response:
    """Replay the call log against a candidate policy (the body): which calls would change
    verdict, by rule and reason, with counts and examples (422 listing every problem of an
    invalid policy)."""
    days = query_int(request, "days", 7, lo=1, hi=MAX_DAYS)
    examples = query_int(request, "examples", 3, lo=0, hi=20)
    text = (await request.content.read(JSON_MAX_BYTES + 1)).decode("utf-8", "replace")
    if len(text) > JSON_MAX_BYTES:
        raise TooLarge(f"a policy may be at most {JSON_MAX_BYTES} bytes", limit=JSON_MAX_BYTES)
    settings = cx.settings(request)
    base = str(Path(settings.policy).parent) if settings.policy else None
    parse_policy(text, "<candidate>", Path(base) if base else None)  # 422 before any work
    lock = request.app[REPLAYING]
    if lock.locked():
        raise Conflict("a replay is already running; try again when it is done")
    until = time.time()
    async with lock:
        await cx.store(request).flush_async()
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            body = await asyncio.get_running_loop().run_in_executor(
                pool, run_replay, settings.store, text, base, until - days * 86400, until,
                examples, settings.api.show_numbers)
    return ok(body)
