"""outguard as the benchmark runs it: ``outguard serve`` plus a latency dump on SIGUSR1.

    python -m bench.outguard_proc -c settings.toml --parts ari --dump /tmp/x/latency.json

The same wiring as ``outguard serve`` (``outguard.server.build_app`` on a
``web.AppRunner`` with the API site, settings from the file and the
``OUTGUARD_*_PASSWORD`` environment, log level WARNING), in its own process so that its
CPU and memory can be read from /proc. What it adds, without any new endpoint in outguard:
on SIGUSR1 it writes the Stasis app's StasisStart -> continue/hangup latencies
(``StasisApp.handling``) and the FastAGI accept -> verdict latencies
(``FastAgiServer.latency_us``) collected since the previous dump to ``--dump`` (JSON,
replaced atomically, with a sequence number) and starts a new collection.
It prints ``READY`` on stdout once the snapshot is built and ARI (if run) is connected.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from aiohttp import web

from outguard import config
from outguard.server import AGI, SCREENER, STASIS, Parts, build_app

logger = logging.getLogger("bench.outguard_proc")
EVENT_COUNTS: dict[str, int] = {}
REQUEST_MS: dict[str, list[float]] = {}
LAG_TASKS: set[asyncio.Task[None]] = set()


def time_requests(app: web.Application) -> None:
    """Diagnosis only (--time-requests): ARI REST round trips by method and path kind."""
    client = app[STASIS].client
    original = client.request

    async def request(method: str, path: str, **kw: object) -> object:
        began = time.perf_counter()
        try:
            return await original(method, path, **kw)  # type: ignore[arg-type]
        finally:
            kind = method + " " + "/".join(p for p in path.split("/")
                                           if p and not any(c.isdigit() for c in p))
            REQUEST_MS.setdefault(kind, []).append((time.perf_counter() - began) * 1000)

    client.request = request  # type: ignore[method-assign]


def time_stages(app: web.Application) -> None:
    """Diagnosis only (--time-stages): the Stasis app's decision (``screening.decide``, the
    cluster's reservation included) and the cluster's reservation alone, in ms, into the
    dump's ``requests_ms`` beside the REST requests."""
    stasis = app[STASIS]
    decide = stasis._decide

    async def timed_decide(facts: object) -> object:
        began = time.perf_counter()
        try:
            return await decide(facts)  # type: ignore[arg-type]
        finally:
            REQUEST_MS.setdefault("stage decide", []).append(
                (time.perf_counter() - began) * 1000)

    stasis._decide = timed_decide  # type: ignore[method-assign]
    shared = getattr(app[SCREENER], "shared", None)
    if shared is not None:
        reserve = shared.reserve

        async def timed_reserve(*a: object, **kw: object) -> object:
            began = time.perf_counter()
            try:
                return await reserve(*a, **kw)
            finally:
                REQUEST_MS.setdefault("stage reserve", []).append(
                    (time.perf_counter() - began) * 1000)

        shared.reserve = timed_reserve
    client = stasis.client
    call_path = client.call_path_request

    async def timed_call_path(method: str, path: str, *a: object, **kw: object) -> object:
        began = time.perf_counter()
        try:
            return await call_path(method, path, *a, **kw)  # type: ignore[arg-type]
        finally:
            kind = "call path " + method + " " + "/".join(
                p for p in path.split("/") if p and not any(c.isdigit() for c in p))
            REQUEST_MS.setdefault(kind, []).append((time.perf_counter() - began) * 1000)

    client.call_path_request = timed_call_path  # type: ignore[method-assign]

    async def loop_lag() -> None:  # how late a 10 ms sleep wakes: the loop's other work
        while True:
            began = time.perf_counter()
            await asyncio.sleep(0.01)
            REQUEST_MS.setdefault("stage loop lag", []).append(
                (time.perf_counter() - began) * 1000 - 10)

    LAG_TASKS.add(asyncio.get_running_loop().create_task(loop_lag()))


def count_events(app: web.Application) -> None:
    """Diagnosis only (--count-events): count the ARI events the app receives, by type."""
    stasis = app[STASIS]
    counts = EVENT_COUNTS
    original = stasis.dispatch

    def dispatch(event: dict[str, object]) -> None:
        kind = str(event.get("type"))
        counts[kind] = counts.get(kind, 0) + 1
        original(event)  # type: ignore[arg-type]

    stasis.dispatch = dispatch  # type: ignore[method-assign]


def dump(app: web.Application, path: Path, seq: int) -> None:
    body: dict[str, object] = {"seq": seq, "at": time.time()}
    stasis = app.get(STASIS)
    if stasis is not None:
        body["stasis_s"] = list(stasis.handling.samples)
        stasis.handling.clear()
    agi = app.get(AGI)
    recorder = getattr(agi, "handling", None)
    if recorder is not None:  # accept -> verdict set, seconds
        body["agi_s"] = list(recorder.samples)
        recorder.clear()
    elif agi is not None and hasattr(agi, "latency_us"):  # older FastAgiServer
        body["agi_s"] = [us / 1e6 for us in agi.latency_us]
        agi.latency_us.clear()
    if REQUEST_MS:
        body["requests_ms"] = {k: list(v) for k, v in REQUEST_MS.items()}
        REQUEST_MS.clear()
    if EVENT_COUNTS:
        body["events"] = dict(EVENT_COUNTS)
        EVENT_COUNTS.clear()
    screener = app.get(SCREENER)
    if screener is not None:
        body["decisions"] = screener.stats.decisions
        body["live_calls"] = screener.live_calls()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body), encoding="utf-8")
    os.replace(tmp, path)


async def main(args: argparse.Namespace) -> None:
    settings = config.load(args.config)
    names = {p.strip() for p in args.parts.split(",") if p.strip()}
    parts = Parts(**{n: n in names for n in ("ari", "agi", "ami", "api")})
    app = build_app(settings, parts)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()  # runs the cleanup contexts: store, snapshot, ARI, AMI, FastAGI
    site = web.TCPSite(runner, settings.api.host, settings.api.port)
    await site.start()
    if args.count_events and STASIS in app:
        count_events(app)
    if args.time_requests and STASIS in app:
        time_requests(app)
    if args.time_stages and STASIS in app:
        time_stages(app)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    seq = 0

    def on_usr1() -> None:
        nonlocal seq
        seq += 1
        try:
            dump(app, Path(args.dump), seq)
        except Exception:  # noqa: BLE001 - a failed dump must not stop the service
            logger.exception("latency dump failed")

    loop.add_signal_handler(signal.SIGUSR1, on_usr1)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    deadline = time.monotonic() + 60
    while "ari" in names and not getattr(app.get(STASIS), "connected", False):
        if time.monotonic() > deadline:
            raise SystemExit("outguard_proc: ARI did not connect within 60 s")
        await asyncio.sleep(0.05)
    on_usr1()  # drop whatever the start-up collected
    print("READY", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--config", required=True, help="settings file (TOML)")
    ap.add_argument("--parts", default="ari,agi,ami,api", help="parts to run (as --only)")
    ap.add_argument("--dump", required=True, help="where SIGUSR1 writes the latencies")
    ap.add_argument("--count-events", action="store_true",
                    help="diagnosis: count ARI events by type into the dump")
    ap.add_argument("--time-requests", action="store_true",
                    help="diagnosis: time ARI REST requests by kind into the dump")
    ap.add_argument("--time-stages", action="store_true",
                    help="diagnosis: time the decision and the cluster's reservation into "
                         "the dump")
    ap.add_argument("--feed-linger-ms", type=float,
                    help="experiment: the call feed's batching linger (outguard.cluster.feed."
                         "LINGER_S; 0 appends and reads each event as it comes)")
    ap.add_argument("--switch-interval-ms", type=float,
                    help="experiment: the interpreter's thread switch interval (GIL)")
    ap.add_argument("--uvloop", action="store_true",
                    help="experiment: run on uvloop's event loop (must be installed)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.feed_linger_ms is not None:
        from outguard.cluster import feed

        feed.LINGER_S = args.feed_linger_ms / 1000
    if args.switch_interval_ms:
        sys.setswitchinterval(args.switch_interval_ms / 1000)
    if args.uvloop:
        import uvloop

        uvloop.run(main(args))
    else:
        asyncio.run(main(args))


if __name__ == "__main__":
    cli()
