"""Policy replay over HTTP: the request body is a candidate policy (TOML); the answer says
which logged calls would change verdict. The replay runs in a process of its own (it is
minutes of CPU for a large call log, which must not share the call path's interpreter);
one replay at a time per service (409 while one runs). The candidate is checked first by
the policy checker's warm worker (``offload``): an invalid one is answered (422) without
starting a process, which costs a second or two of CPU on its own."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from aiohttp import web

from outguard.api import context as cx
from outguard.api.core import JSON_MAX_BYTES, Param, ok, query_int, read_body, route
from outguard.api.offload import OFFLOAD
from outguard.errors import Conflict
from rules.errors import PolicyError, PolicyIssue

REPLAYING = web.AppKey("replaying", asyncio.Lock)
MAX_DAYS = 31


def run_replay(store_url: str, text: str, policy_dir: str | None, since: float, until: float,
               examples: int, show_numbers: bool) -> dict[str, Any]:
    """In the replay process: check the candidate as every policy from a client is checked
    (includes: presets and files in ``policy_dir`` only), open the store (SQLite file or
    PostgreSQL URL), replay. An invalid candidate comes back as ``{"issues": [...]}``."""
    from outguard import policy_file, privacy
    from outguard.replay import replay
    from outguard.store import open_store

    privacy.show_numbers(show_numbers)
    try:
        policy = policy_file.parse_untrusted(text, policy_dir)
    except PolicyError as exc:
        return {"issues": exc.as_tuples()}
    store = open_store(store_url)
    try:
        return replay(store, policy, since, until, examples=examples,
                      mask=privacy.mask).as_dict()
    finally:
        store.close()


@route("POST", "/api/policy/replay", tag="policy", role="reviewer", heavy=True,
       body_type="text/plain",
       params=(Param("days", type="integer", description="the last N days (default 7, at most 31)"),
               Param("examples", type="integer", description="examples per change (default 3)")))
async def replay_policy(request: web.Request) -> web.Response:
    """Replay the call log against a candidate policy (the body, UTF-8, at most 1 MiB):
    which calls would change verdict, by rule and reason, with counts and examples (422
    listing every problem of an invalid policy). Includes may name presets, and files in
    the configured ``policy_dir`` only. The check and the replay run in a process of their
    own, never on the loop that screens calls."""
    days = query_int(request, "days", 7, lo=1, hi=MAX_DAYS)
    examples = query_int(request, "examples", 3, lo=0, hi=20)
    raw = await read_body(request, JSON_MAX_BYTES, "a policy")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError([PolicyIssue("<request>", raw.count(b"\n", 0, exc.start) + 1, "",
                                       f"not UTF-8 text (byte {exc.start}: {exc.reason})")])
    settings = cx.settings(request)
    await request.app[OFFLOAD].require_valid(text, settings.policy_dir or None)
    lock = request.app[REPLAYING]
    if lock.locked():
        raise Conflict("a replay is already running; try again when it is done")
    until = time.time()
    async with lock:
        await cx.store(request).flush_async()
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            body = await asyncio.get_running_loop().run_in_executor(
                pool, run_replay, settings.store, text, settings.policy_dir or None,
                until - days * 86400, until, examples, settings.api.show_numbers)
    if "issues" in body:
        raise PolicyError([PolicyIssue(*issue) for issue in body["issues"]])
    return ok(body)
