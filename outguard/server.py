"""Wire once: the one place that builds outguard's parts and runs them in one process.

An aiohttp application holds every part in typed ``web.AppKey``s and starts and stops them
with ``cleanup_ctx``, in order: store -> screener -> enforcer -> AMI listeners -> ARI apps /
FastAGI server. There is one AMI listener and one ARI app per PBX (``[[ami]]`` /
``[[ari]]`` target), each connecting, reconnecting and reconciling on its own; the ARI app
of a PBX hands its calls to the AMI listener of the same PBX, and the one FastAGI server
hands each call to the listener of the PBX it came from.
The admin API and dashboard are routes on the same application.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agi.outcomes import AmiListener
from agi.server import FastAgiServer
from ari_app.app import StasisApp
from ari_app.client import AriClient
from outguard import policy_file, privacy
from outguard.config import Settings
from outguard.consent import DialplanOptOuts
from outguard.dialplan_pbx import DialplanPbx
from outguard.enforcement import Enforcer
from outguard.callevents import CallDecided, CallEnded
from outguard.live import DEFAULT_PBX, MAX_CALL_AGE_S
from outguard.pbx_claims import PbxClaims
from outguard.service import Screener
from outguard.store.aio import AsyncStore
from outguard.store import is_postgres_url
from outguard.store import open_store as open_any_store
from outguard.store.spool import default_spool_dir
from outguard.tasks import cancel_and_wait
from rules.policy_types import Policy

if TYPE_CHECKING:  # redis-py is only needed in cluster mode
    from outguard.cluster.feed_debt import FeedMark
    from outguard.cluster.guard import GuardedCaps

logger = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", AsyncStore)
SCREENER = web.AppKey("screener", Screener)
ENFORCER = web.AppKey("enforcer", Enforcer)
STASIS = web.AppKey("stasis", StasisApp)  # the first (or only) PBX's ARI app
AGI = web.AppKey("agi", FastAgiServer)
AMI = web.AppKey("ami", AmiListener)  # the first (or only) PBX's AMI listener
OPTOUTS = web.AppKey("optouts", DialplanOptOuts)  # shared by every PBX's AMI listener
STASIS_BY_PBX = web.AppKey("stasis_by_pbx", dict)  # pbx -> StasisApp
AMI_BY_PBX = web.AppKey("ami_by_pbx", dict)  # pbx -> AmiListener
#: cluster mode: the call feed's figures (``CallFeed.figures``), for /metrics
FEED_FIGURES: web.AppKey[Callable[[], dict[str, int]]] = web.AppKey("feed_figures")
DIALPLANS = web.AppKey("dialplans", dict)  # pbx -> DialplanPbx (its OUTGUARD_PBX)
PARTS = web.AppKey("parts", dict)  # name -> object with a .connected flag, for /health
#: cluster mode: this instance's claims of PBX names (one Asterisk per name)
CLAIMS = web.AppKey("pbx_claims", PbxClaims)


def part_name(kind: str, pbx: str) -> str:
    """A part's name in /health, /metrics and the banner: ``ari`` for the one unnamed PBX,
    ``ari:NAME`` for a named one."""
    return kind if pbx == DEFAULT_PBX else f"{kind}:{pbx}"


def split_part(name: str) -> tuple[str, str]:
    """``ari:pbx1`` -> ("ari", "pbx1"); ``agi`` -> ("agi", "")."""
    kind, _, pbx = name.partition(":")
    return kind, pbx or (DEFAULT_PBX if kind in ("ari", "ami") else "")


@dataclass(frozen=True)
class Parts:
    """Which parts to run (``outguard serve --only ari,api``)."""

    ari: bool = True
    agi: bool = True
    ami: bool = True
    api: bool = True


DEMO_POLICY_WARNING = (
    "no policy is set (`policy` in the settings, OUTGUARD_POLICY or --policy): outguard "
    "runs the embedded DEMO policy (rules/presets/demo.toml), with its demo calling hours, "
    "caps and AUTO-SUSPENSION triggers (two complaints suspend a tenant)")


def read_policy(settings: Settings) -> Policy:
    """The policy the settings name, with every check (``outguard.policy_file``): the
    service refuses to start with a policy that fails any of them, [enforcement] included."""
    return policy_file.read(settings.policy)


def policy_source(settings: Settings) -> str:
    """Where the policy in force comes from, as /health and the banner say it."""
    return settings.policy or "embedded demo policy (rules/presets/demo.toml)"


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not is_postgres_url(settings.store):
        Path(settings.store).parent.mkdir(parents=True, exist_ok=True)
    spool_dir = settings.spool_dir or default_spool_dir(settings.store)
    store = AsyncStore(open_any_store(settings.store, spool_dir=spool_dir))
    app[STORE] = store
    yield
    await store.aclose()


async def _screener_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.policy:
        logger.warning("%s", DEMO_POLICY_WARNING)
    shared = shared_caps(settings, app[STORE]) if settings.cluster.redis else None
    screener = Screener(app[STORE], read_policy(settings),
                        default_tenant=settings.default_tenant, shared=shared,
                        slot_ttl_s=settings.cluster.slot_ttl_s, follows=followed_pbxes(settings))
    try:
        await screener.start()
        app[SCREENER] = screener
        yield
        await screener.stop()
    finally:
        if shared is not None:
            await shared.caps.aclose()


def followed_pbxes(settings: Settings) -> list[str] | None:
    """The PBXes whose calls this instance follows to their end, restored after a restart:
    in cluster mode its ARI and AMI targets' (the call log is shared; other PBXes' calls
    are their instances'); None in embedded mode (every call of its own call log)."""
    return settings.pbx_names() if settings.cluster.redis else None


def shared_caps(settings: Settings, store: AsyncStore) -> GuardedCaps:
    """Cluster mode's caps and live-call slots on Redis, behind each cap's failure policy;
    an emptied Redis is rebuilt from the call log."""
    from outguard.cluster.caps import RedisCaps
    from outguard.cluster.guard import GuardedCaps

    cfg = settings.cluster
    # no socket timeout: the guard bounds every use of this client (asyncio.timeout),
    # and redis-py sends without a task per command (bench/RESULTS.md, issue 15)
    # the call path's scripts go over one pipelined connection of its own (cluster.wire);
    # one that has had no answer for 4x the budget (a probe's bound) is given up
    caps = RedisCaps.from_url(cfg.redis, prefix=cfg.prefix, ttl_s=cfg.slot_ttl_s,
                              timeout_s=None,
                              connect_timeout_s=max(0.5, cfg.timeout_ms / 1000 * 2),
                              stall_s=max(1.0, cfg.timeout_ms / 1000 * 4))
    return GuardedCaps(caps, history=store.store.iter_allowed_calls_since,
                       timeout_s=cfg.timeout_ms / 1000)


async def _enforcement_ctx(app: web.Application) -> AsyncIterator[None]:
    """Risk figures, triggers, suspensions, appeals, complaints: beside the call path,
    fed by the screener's events. The policy's [enforcement] table was checked with the
    rest of it (``read_policy``): a policy whose triggers cannot run never gets here."""
    screener = app[SCREENER]
    settings = app[SETTINGS]
    if not settings.cluster.redis:
        enforcer = Enforcer(app[STORE], screener.policy, events=screener.events)
        fired = await enforcer.start()
        if any(f.suspension is not None for f in fired):  # suspended at start on the rebuilt figures: in force before the first call
            await screener.rebuild()
        app[ENFORCER] = enforcer
        yield
        await enforcer.stop()
        return
    async with _cluster_enforcement(app) as enforcer:
        app[ENFORCER] = enforcer
        yield


@contextlib.asynccontextmanager
async def _cluster_enforcement(app: web.Application) -> AsyncIterator[Enforcer]:
    """Cluster mode: this instance shares its call events on the call feed and folds
    everyone's into its risk figures; the one holding the PostgreSQL advisory lock runs
    the triggers and the sweep (``outguard.cluster.leader``)."""
    import redis.asyncio as aioredis

    from outguard.cluster.feed import CallFeed
    from outguard.cluster.feed_debt import FeedMark
    from outguard.cluster.leader import AdvisoryLeader

    settings, screener, store = app[SETTINGS], app[SCREENER], app[STORE]
    client = aioredis.Redis.from_url(settings.cluster.redis, socket_timeout=5,
                                     socket_connect_timeout=2)
    mark = FeedMark(settings.spool_dir or default_spool_dir(settings.store))
    feed = CallFeed(client, settings.cluster.prefix, high_water=mark)
    app[FEED_FIGURES] = feed.figures
    leader = AdvisoryLeader(settings.store) if is_postgres_url(settings.store) else None
    loop = asyncio.get_running_loop()
    await feed.recover(await owed_events(store, mark, settings.pbx_names()))
    claims = app[CLAIMS] = PbxClaims(store, instance_name(settings))
    tasks = [loop.create_task(feed.publisher(screener.events)), loop.create_task(claims.run())]
    try:
        if leader is not None:
            await leader.step()  # the first instance up leads from its start
        enforcer = Enforcer(store, screener.policy, events=screener.events, feed=feed,
                            leads=leader.leads if leader is not None else None)
        if leader is not None:
            leader.on_change = enforcer.leadership_changed
            tasks.append(loop.create_task(leader.run()))
        fired = await enforcer.start()
        if any(f.suspension is not None for f in fired):
            await screener.rebuild()
        try:
            yield enforcer
        finally:
            await enforcer.stop()
    finally:
        await cancel_and_wait(tasks)
        await feed.stop()  # the publisher is stopped: what it left, appended or owed
        if leader is not None:
            await leader.close()
        await client.aclose()


def instance_name(settings: Settings) -> str:
    """This instance's name in the PBX claims and their messages: ``[cluster] instance``,
    else ``<host name>:<API port>``."""
    return settings.cluster.instance or f"{socket.gethostname()}:{settings.api.port}"


async def owed_events(store: AsyncStore, mark: FeedMark,
                      pbxes: Sequence[str]) -> list[CallDecided | CallEnded]:
    """The call events of this instance's earlier runs that the call feed may lack (since
    its high-water mark: ``FeedMark``; Redis may have been unable to take them before it
    stopped or died, noticed or not), derived again from the call log; none at the first
    start."""
    from outguard.cluster.feed_debt import MAX_DEBT_S, events_from_log

    if mark.since is None:
        return []
    since = max(mark.since, time.time() - MAX_DEBT_S)
    inner, names = store.store, frozenset(pbxes)
    return await store.run(lambda: list(events_from_log(
        inner.iter_calls_since(since - MAX_CALL_AGE_S, allowed_only=False, ended_since=since),
        since, names)))


async def _ari_ctx(app: web.Application) -> AsyncIterator[None]:
    """One ARI app per enabled [[ari]] target, each with its own client and task."""
    apps: dict[str, StasisApp] = {}
    runners = []
    trackers = app.get(AMI_BY_PBX, {})
    for cfg in app[SETTINGS].ari:
        if not cfg.enabled:
            continue
        client = AriClient(cfg.url, cfg.user, cfg.password, cfg.app)
        await client.open()
        stasis = StasisApp(client, app[SCREENER], app[SETTINGS].calls,
                           tracker=trackers.get(cfg.pbx), pbx=cfg.pbx,
                           dialplan=dialplan_of(app, cfg.pbx), claims=app.get(CLAIMS))
        apps[cfg.pbx] = stasis
        app[PARTS][part_name("ari", cfg.pbx)] = stasis
        runners.append(asyncio.get_running_loop().create_task(stasis.run()))
    app[STASIS_BY_PBX] = apps
    if apps:
        app[STASIS] = next(iter(apps.values()))
    yield
    await cancel_and_wait(runners)
    for stasis in apps.values():
        await stasis.stop()
        await stasis.client.close()


async def _ami_ctx(app: web.Application) -> AsyncIterator[None]:
    """One AMI listener per enabled [[ami]] target, each with its own connection; all
    share one :class:`DialplanOptOuts` (one opt-out writer, one drain at shutdown)."""
    screener = app[SCREENER]
    optouts = DialplanOptOuts(app[STORE], lambda: screener.policy.default_region,
                              app[SETTINGS].default_tenant or None)
    app[OPTOUTS] = optouts
    listeners: dict[str, AmiListener] = {}
    for cfg in app[SETTINGS].ami:
        if cfg.enabled:
            listeners[cfg.pbx] = AmiListener(screener, cfg, on_optout=optouts,
                                             dialplan=dialplan_of(app, cfg.pbx),
                                             claims=app.get(CLAIMS))
            app[PARTS][part_name("ami", cfg.pbx)] = listeners[cfg.pbx]
    app[AMI_BY_PBX] = listeners
    if listeners:
        app[AMI] = next(iter(listeners.values()))
    runners = [asyncio.get_running_loop().create_task(listener.run())
               for listener in listeners.values()]
    yield
    await cancel_and_wait(runners)
    for listener in listeners.values():
        await listener.close()
    await optouts.drain()


async def _agi_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    cfg = settings.agi
    pbxes = settings.pbx_names() or [DEFAULT_PBX]
    server = FastAgiServer(app[SCREENER], cfg.host, cfg.port,
                           trackers=app.get(AMI_BY_PBX, {}),
                           pbxes=pbxes,
                           dialplans={pbx: dialplan_of(app, pbx) for pbx in pbxes},
                           claims=app.get(CLAIMS),
                           pbx_hosts={t.pbx: t.host for t in settings.ami if t.enabled},
                           budget_ms=app[SETTINGS].calls.budget_ms,
                           fail_mode=app[SETTINGS].calls.fail_mode,
                           fail_cause=app[SETTINGS].calls.fail_cause)
    await server.start()
    app[AGI] = server
    app[PARTS]["agi"] = server
    yield
    await server.stop()


def dialplan_of(app: web.Application, pbx: str) -> DialplanPbx:
    """The one record of this PBX's OUTGUARD_PBX, shared by its ARI app, AMI listener and
    the FastAGI server (made on first use: the PBX's name in cluster mode, else empty)."""
    dialplans: dict[str, DialplanPbx] = app[DIALPLANS]
    if pbx not in dialplans:
        dialplans[pbx] = DialplanPbx(pbx, pbx if app[SETTINGS].cluster.redis else "")
    return dialplans[pbx]


def store_health(app: web.Application) -> dict[str, Any]:
    """How call-log writes fare (``SQLiteStore.write_health``); empty for other stores."""
    inner = app[STORE].store
    report = getattr(inner, "write_health", None)
    return dict(report()) if callable(report) else {}


async def health(request: web.Request) -> web.Response:
    """``ok``, ``starting`` (no snapshot yet) or ``degraded`` with the reasons."""
    parts = {name: bool(getattr(part, "connected", True))
             for name, part in request.app[PARTS].items()}
    screener = request.app[SCREENER]
    writes = store_health(request.app)
    reasons: list[str] = []
    if writes.get("degraded"):
        reasons.append(f"store refuses call-log writes ({writes['degraded']});"
                       f" {writes['spool_rows']} rows spooled")
    elif writes.get("spool_rows"):
        reasons.append(f"{writes['spool_rows']} call-log rows waiting in the spool")
    for dialplan in request.app[DIALPLANS].values():
        if dialplan.found is not None and dialplan.problem:
            reasons.append(f"pbx {dialplan.pbx}: {dialplan.problem}")
    if screener.shared is not None and not screener.shared.health.available:
        reasons.append("cap store (Redis) unavailable: caps follow their failure policy"
                       " (when_unavailable)")
    claims = request.app.get(CLAIMS)
    if claims is not None:
        reasons.extend(claims.conflicts.values())  # each names both sides
    for stasis in request.app.get(STASIS_BY_PBX, {}).values():
        if stasis.replaced.problem:  # another connection took its Stasis application
            reasons.append(stasis.replaced.problem)
    status = "starting" if screener.snapshot is None else "degraded" if reasons else "ok"
    body: dict[str, Any] = {
        "status": status,
        "reasons": reasons,
        "connected": parts,
        "live_calls": screener.live_calls(),
        "store": writes,
        "policy": policy_source(request.app[SETTINGS]),
        "demo_policy": not request.app[SETTINGS].policy,
    }
    enforcer = request.app.get(ENFORCER)
    if enforcer is not None:
        body["warnings"] = await enforcer.calendar_warnings()
    errors: dict[str, str] = {}
    for name, part in request.app[PARTS].items():
        why = str(getattr(part, "last_error", "") or "")
        if why and not parts.get(name, True):
            errors[name] = why
    if errors:
        body["errors"] = errors
    return web.json_response(body)


Extra = Callable[[web.Application], None]


def build_app(
    settings: Settings, parts: Parts = Parts(), extras: Sequence[Extra] = ()
) -> web.Application:
    """The whole service as one aiohttp application (not started)."""
    app = web.Application(client_max_size=settings.api.max_body_bytes)
    app[SETTINGS] = settings
    privacy.configure(settings)  # the one masking setting, for every log line too
    app[PARTS] = {}
    app[DIALPLANS] = {}
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_screener_ctx)
    app.cleanup_ctx.append(_enforcement_ctx)
    # AMI before the ARI app and the FastAGI server, which hand it the calls they let through
    if parts.ami and any(t.enabled for t in settings.ami):
        app.cleanup_ctx.append(_ami_ctx)
    if parts.ari and any(t.enabled for t in settings.ari):
        app.cleanup_ctx.append(_ari_ctx)
    if parts.agi and settings.agi.enabled:
        app.cleanup_ctx.append(_agi_ctx)
    # -- admin API, /metrics and the dashboard (outguard/api) ---------------------------
    if parts.api and settings.api.enabled:
        # imported here: outguard.api imports this module's keys
        from outguard.api import setup_api

        setup_api(app)
    for extra in extras:
        extra(app)
    app.router.add_get("/health", health)
    return app


@dataclass(frozen=True)
class Started:
    """What ``serve`` tells its caller once it listens and its parts had time to
    connect: which parts are down and why (e.g. a refused ARI login), and whether the
    demo policy runs."""

    down: dict[str, str]
    demo_policy: bool


async def wait_connected(app: web.Application, timeout_s: float) -> dict[str, str]:
    """Wait up to ``timeout_s`` for every part (ARI, AMI) to connect; the ones that did
    not, with their last error."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        down = {name: str(getattr(part, "last_error", "") or "not connected yet")
                for name, part in app[PARTS].items()
                if not getattr(part, "connected", True)}
        if not down or asyncio.get_running_loop().time() >= deadline:
            return down
        await asyncio.sleep(0.05)


def freeze_startup_heap() -> int:
    """Collect, then move what the start left on the heap (modules, the phone-number
    metadata, the policy, the first snapshot) out of the garbage collector's passes
    (``gc.freeze``); return how many objects that is.

    Python runs a full pass now and then on its own, on the thread that allocates: the
    event loop, where every decision waiting behind it waits as long (a full pass over a
    started outguard ~35 ms on a 2-core host, ``bench/gc_pause.py``; after the freeze it
    walks only what came since). Frozen objects are still freed when nothing refers to
    them; only garbage in reference cycles among them stays (the start leaves none worth
    a pass: it is collected just before)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def serve(
    settings: Settings, parts: Parts = Parts(),
    ready: Callable[[Started], None] | None = None, connect_wait_s: float = 5.0,
) -> None:
    """Run until cancelled. ``ready`` is called once listening, after the parts had up
    to ``connect_wait_s`` to connect and the start's heap was frozen
    (``freeze_startup_heap``)."""
    app = build_app(settings, parts)
    if parts.api and settings.api.enabled:  # masked access log (outguard/api/access_log.py)
        from outguard.api.access_log import AccessLogger

        runner = web.AppRunner(app, access_log_class=AccessLogger,
                               access_log=logging.getLogger("outguard.access"))
    else:
        runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.api.host, settings.api.port)
    await site.start()
    logger.info("outguard listening on http://%s:%d", settings.api.host, settings.api.port)
    down = await wait_connected(app, connect_wait_s)
    for name, why in down.items():
        logger.error("%s is NOT connected: %s", name.upper(), why)
    logger.debug("start's heap frozen: %d objects out of the collector's passes",
                 freeze_startup_heap())
    if ready is not None:
        ready(Started(down, not settings.policy))
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
