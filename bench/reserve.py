"""Decide with a Redis reservation (cluster mode) against the in-memory path, in one run.

    .venv/bin/python bench/reserve.py --calls 3000

Three Screeners over the same policy (six caps that apply to every call: caller ID per day,
account per hour and per minute, destination per day, distinct callees, concurrent calls;
limits high enough that every call is allowed, so every cluster decision is a round trip)
and a SQLite store each: one embedded (``screen``, caps in memory) and two in cluster mode
(``screen_reserving`` against a redis-server this script starts on 127.0.0.1, port 17000 +
OUTGUARD_TEST_OFFSET, default 900, each on a key prefix of its own):

- "now": the caps as ``outguard serve`` wires them (``outguard.server.shared_caps``: the
  call path's pipelined connection, ``cluster.wire``; this checkout's script; the guard's
  default budget, 250 ms);
- "before": the client and script of git ``BEFORE`` (9f97332, the reservation over
  redis-py's pool, the script before its calls were cut), loaded from git, behind the
  same guard (left out when git cannot show it: ``--no-before``).

``--store postgresql``: the cluster sides' call log goes to a PostgreSQL server this script
starts on 127.0.0.1 (port 14000 + OUTGUARD_TEST_OFFSET, a database per side, the service's
spool beside it), as cluster mode runs; the embedded side keeps its SQLite store.

Calls go round-robin between the three in rounds of 100 (the order turning every round),
so all see the same load; each call ends right after it is decided (its release goes out
in the background, as in service) and a round ends when its releases are told and its
call log is written (so no side's writer thread works in another side's round). Calls
run back to back (the next starts when the one before is decided: the most the loop can
do, every core busy) or, with ``--rate N``, started N a second on each side (open loop,
as calls arrive in service; they overlap when one is slower than the interval). The
start's heap is frozen before the first call, as ``outguard serve`` freezes it. Per side:
latency, CPU of this process and of redis-server, Redis's own time in the scripts (INFO
commandstats, per round), the garbage collector's pauses. Prints a Markdown section for
bench/RESULTS.md with the commit; the figures that matter are the ratios within the run.

    .venv/bin/python bench/reserve.py --socket-timeout-ab --calls 3000

only measures the reservation on redis-py's pool (``GuardedCaps`` over ``RedisCaps``
without its wire) on two clients of one redis-server, with and without redis-py's socket
timeout (which sends each command through ``asyncio.wait_for``: a task per command on
Python 3.11), interleaved in one run: latency and CPU per reserve+release on both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import importlib.util
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import redis.asyncio as aioredis
from redis import __version__ as redis_version

from outguard.callfacts import ChannelFacts
from outguard.cluster.caps import CallKeys, CapSpec, RedisCaps
from outguard.cluster.guard import GuardedCaps
from outguard.config import AmiConfig, AriConfig, ClusterConfig, Settings
from outguard.server import freeze_startup_heap, shared_caps
from outguard.service import Decision, Screener
from outguard.store import open_store
from outguard.store.aio import AsyncStore
from outguard.store.spool import default_spool_dir
from outguard.store.sqlite import SQLiteStore
from outguard.testing.servers import PG_BASE_PORT, REDIS_BASE_PORT, PostgresServer, RedisServer
from rules.policy import parse_policy

POLICY = """
default_region = "CN"
timezone = "Asia/Shanghai"
"""
CAPS = (("caller_daily", "caller_id", "day"), ("acct_hour", "account", "hour"),
        ("acct_minute", "account", "minute"), ("dest_day", "destination", "day"),
        ("callees", "distinct_callees", "day"), ("conc", "concurrent_account", "day"))
for rule, scope, window in CAPS:
    POLICY += (f'\n[[rules]]\nid = "{rule}"\nkind = "cap"\nscope = "{scope}"\n'
               f'limit = 1000000\nwindow = "{window}"\n')


DAY = 86400
#: the code "before" is loaded from (the reservation as it was when issue 15's goal was
#: measured at p99 5.2 ms)
BEFORE = "9f97332"
SIDES = ("embedded", "before", "now")


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def facts(i: int, tag: str) -> ChannelFacts:
    return ChannelFacts(adapter="ari", channel_id=f"{tag}-{i}", channel_name="PJSIP/agent-1",
                        dialed=f"139{i:08d}", caller_id=f"01088{i % 50:06d}",
                        account=f"a{i % 200}")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def before_caps_module(rev: str = BEFORE) -> ModuleType | None:
    """``outguard.cluster.caps`` and its script as they were at ``rev`` (None when git
    cannot show them: not a checkout, or a shallow one)."""
    shown = {}
    for path in ("outguard/cluster/caps.py", "outguard/cluster/reserve.lua"):
        got = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
        if got.returncode:
            return None
        shown[path] = got.stdout
    tmp = Path(tempfile.mkdtemp(prefix="outguard-bench-before-"))
    source = tmp / "caps_before.py"
    source.write_text(shown["outguard/cluster/caps.py"])
    spec = importlib.util.spec_from_file_location("caps_before", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.SCRIPT = shown["outguard/cluster/reserve.lua"]  # type: ignore[attr-defined]
    return module


def service_settings(url: str, prefix: str) -> Settings:
    return Settings(cluster=ClusterConfig(redis=url, prefix=prefix),
                    ari=(AriConfig(pbx="bench"),), ami=(AmiConfig(pbx="bench"),))


class GcPauses:
    """Time spent in the garbage collector, by generation, while ``side`` is set."""

    def __init__(self) -> None:
        self.side = ""
        self.paused: dict[str, list[float]] = {}
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        elif self.side:
            self.paused.setdefault(f"{self.side}:{info['generation']}", []).append(
                (time.perf_counter() - self._start) * 1e6)


def history(calls: int, now: float) -> list[tuple[str, str, str, str, str, float]]:
    """``calls`` allowed calls of the day before ``now`` by the accounts and caller IDs
    the measured calls use (the call log's rows a rebuild replays), oldest first."""
    rng = random.Random(15)
    rows = [(f"h{j}", "default", f"a{rng.randrange(200)}", f"+861088{rng.randrange(50):06d}",
             f"+86139{rng.randrange(10**8):08d}", now - rng.uniform(0, DAY)) for j in range(calls)]
    return sorted(rows, key=lambda row: row[5])


def side_store(side: str, workdir: Path, pg: PostgresServer | None) -> AsyncStore:
    """A side's store: SQLite in ``workdir``; a cluster side's on ``pg`` when given (opened
    as ``outguard serve`` opens it: ``open_store`` with the default spool beside it)."""
    if pg is None or side == "embedded":
        return AsyncStore(SQLiteStore(workdir / f"{side}.db"))
    url = pg.create_database(f"reserve_{side}")
    spool = workdir / Path(default_spool_dir(url)).name
    return AsyncStore(open_store(url, spool_dir=str(spool)))


async def measure(url: str, calls: int, workdir: Path, redis_pid: int,
                  before: ModuleType | None, past: int = 0,
                  pg: PostgresServer | None = None,
                  rate: float = 0) -> dict[str, dict[str, float]]:
    policy = parse_policy(POLICY)
    stores = {side: side_store(side, workdir, pg) for side in SIDES}
    guards: dict[str, GuardedCaps] = {"now": shared_caps(service_settings(url, "now:"),
                                                         stores["now"])}
    if before is not None:
        old = before.RedisCaps.from_url(url, prefix="before:", timeout_s=None,
                                        connect_timeout_s=0.5)
        guards["before"] = GuardedCaps(old, history=stores["before"].store.iter_allowed_calls_since,
                                       timeout_s=guards["now"].timeout_s)
    screeners = {"embedded": Screener(stores["embedded"], policy)}
    for side, guard in guards.items():
        screeners[side] = Screener(stores[side], policy, shared=guard)
    sides = [s for s in SIDES if s in screeners]
    for screener in screeners.values():
        await screener.start()
    if past:  # a day of calls already counted: the hashes as big as in service
        rows = history(past, time.time())
        for guard in guards.values():
            await guard.caps.rebuild(rows)
        del rows
    freeze_startup_heap()  # as ``outguard serve`` does once started (all sides alike)
    admin = aioredis.Redis.from_url(url)
    got: dict[str, dict[str, Any]] = {s: {"lat": [], "cpu": 0.0, "redis": 0.0, "script_us": 0.0,
                                          "scripts": 0, "failed": 0} for s in sides}
    pauses = GcPauses()
    gc.callbacks.append(pauses)

    async def one(side: str, i: int, tag: str) -> tuple[Decision, float]:
        screener = screeners[side]
        t0 = time.perf_counter()
        if side == "embedded":
            d = screener.screen(facts(i, tag))
        else:
            d = await screener.screen_reserving(facts(i, tag))
        return d, (time.perf_counter() - t0) * 1e6

    async def script_time() -> tuple[float, int]:
        stat = (await admin.info("commandstats")).get("cmdstat_evalsha", {})
        return float(stat.get("usec", 0)), int(stat.get("calls", 0))

    try:
        for side in sides:  # warm up: caches, the scripts loaded, the connections open
            for i in range(200):
                d, _ = await one(side, i, f"w{side}")
                screeners[side].ended(d.id, 16)
            if side != "embedded":
                await screeners[side].shared_told()
            await stores[side].flush_async()

        async def decided(side: str, i: int) -> None:
            d, us = await one(side, i, side[0])
            got[side]["lat"].append(us)
            if not d.allowed:  # past the guard's budget: failed by the caps' policy
                got[side]["failed"] += 1
            screeners[side].ended(d.id, 16)

        lag: list[float] = []

        async def paced(side: str, start: int, stop: int) -> None:
            """The round's calls started at ``rate`` a second, each as a task of its own
            (they overlap when one is slower than the interval); the lag of each start
            behind its due time is kept (the loop's timer rounds up to 1 ms)."""
            loop = asyncio.get_running_loop()
            begun, tasks = loop.time(), []
            for k, i in enumerate(range(start, stop)):
                due = begun + k / rate
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                lag.append((loop.time() - due) * 1e6)
                tasks.append(asyncio.ensure_future(decided(side, i)))
            await asyncio.gather(*tasks)

        for n, start in enumerate(range(0, calls, 100)):
            order = sides[n % len(sides):] + sides[:n % len(sides)]
            for side in order:
                screener, g = screeners[side], got[side]
                usec0, scripts0 = await script_time()
                c0, r0 = time.process_time(), proc_cpu(redis_pid)
                pauses.side = side
                stop = min(calls, start + 100)
                if rate:
                    await paced(side, start, stop)
                else:
                    for i in range(start, stop):
                        await decided(side, i)
                if side != "embedded":
                    await screener.shared_told()  # the round's releases are its cost too
                # and so is the round's call log: written before the next side's round
                # starts (else one side's writer thread works in another's round)
                await stores[side].flush_async()
                pauses.side = ""
                g["cpu"] += time.process_time() - c0
                g["redis"] += proc_cpu(redis_pid) - r0
                usec1, scripts1 = await script_time()
                g["script_us"] += usec1 - usec0
                g["scripts"] += scripts1 - scripts0
        ping: list[float] = []
        for _ in range(min(calls, 2000)):
            t0 = time.perf_counter()
            await admin.ping()
            ping.append((time.perf_counter() - t0) * 1e6)
    finally:
        gc.callbacks.remove(pauses)
        gc.unfreeze()
        for screener in screeners.values():
            await screener.stop()
        for store in stores.values():
            await store.aclose()
        for guard in guards.values():
            await guard.caps.aclose()
        await admin.aclose()
    out: dict[str, dict[str, float]] = {}
    for side, g in got.items():
        lat = g["lat"]
        gen2 = pauses.paused.get(f"{side}:2", [])
        young = pauses.paused.get(f"{side}:0", []) + pauses.paused.get(f"{side}:1", [])
        out[side] = {
            "calls": len(lat), "p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99),
            "p999": pct(lat, 99.9), "over_1ms": sum(x > 1000 for x in lat) / len(lat) * 100,
            "cpu_us": g["cpu"] / len(lat) * 1e6, "redis_cpu_us": g["redis"] / len(lat) * 1e6,
            "script_us": g["script_us"] / max(1, g["scripts"]),
            "scripts": g["scripts"], "failed": g["failed"],
            "gc2_n": len(gen2), "gc2_max": max(gen2, default=0.0),
            "gc01_n": len(young), "gc01_max": max(young, default=0.0),
        }
    out["ping"] = {"p50": pct(ping, 50), "p99": pct(ping, 99)}
    if lag:
        out["lag"] = {"p50": pct(lag, 50), "p99": pct(lag, 99)}
    return out


def pg_version(pg: PostgresServer) -> str:
    try:
        return pg.psql("SHOW server_version").strip().split()[0]
    except Exception:  # noqa: BLE001 - only a label
        return "?"


def print_measure(r: dict[str, dict[str, float]], offset: int, calls: int,
                  commit: str, past: int, store: str = "sqlite", rate: float = 0) -> None:
    load = os.getloadavg()
    labels = {"embedded": "embedded: `Screener.screen`, caps in memory",
              "before": f"cluster before ({BEFORE}): redis-py's pool, the script before",
              "now": f"cluster now ({commit}): `screen_reserving` as `outguard serve` wires it"}
    rows = []
    for side in SIDES:
        if side not in r:
            continue
        x = r[side]
        rows.append(
            f"| {labels[side]} | {x['p50']:.0f} / {x['p90']:.0f} / {x['p99']:.0f} / "
            f"{x['p999']:.0f} us | {x['over_1ms']:.1f}% | {x['cpu_us']:.0f} us | "
            f"{x['redis_cpu_us']:.0f} us | "
            + (f"{x['script_us']:.0f} us ({x['scripts']:.0f})" if side != "embedded" else "-")
            + f" | {x['gc2_n']:.0f}, max {x['gc2_max']:.0f} us / {x['gc01_n']:.0f},"
            f" max {x['gc01_max']:.0f} us |")
    ratios = ""
    if "before" in r:
        b, n = r["before"], r["now"]
        ratios = (f"\nnow / before: p50 {n['p50'] / b['p50']:.2f}x, p99 {n['p99'] / b['p99']:.2f}x,"
                  f" outguard CPU per call {n['cpu_us'] / b['cpu_us']:.2f}x, redis-server CPU"
                  f" per call {n['redis_cpu_us'] / b['redis_cpu_us']:.2f}x, Redis's time per"
                  f" script {n['script_us'] / b['script_us']:.2f}x.")
    failed = ", ".join(f"{s} {r[s]['failed']:.0f}" for s in ("before", "now") if s in r)
    pacing = "calls back to back (the next starts when the one before is decided)"
    if rate:
        pacing = (f"calls started at {rate:g} a second (open loop: a call does not wait for"
                  f" the one before; start lag behind the due time p50"
                  f" {r['lag']['p50']:.0f} / p99 {r['lag']['p99']:.0f} us)")
    table = "\n".join(rows)
    print(f"""## Decide with a Redis reservation vs in memory (bench/reserve.py)

Command: `OUTGUARD_TEST_OFFSET={offset} .venv/bin/python bench/reserve.py --calls {calls}\
{f" --history {past}" if past else ""}{" --store postgresql" if store != "sqlite" else ""}\
{f" --rate {rate:g}" if rate else ""}`; {f"{past} calls of the past day counted first (each side)" if past else "fresh keys"};
{pacing};
call log: {"the cluster sides' on PostgreSQL " + store + " (127.0.0.1, the test harness's cluster: fsync off), the embedded side's on SQLite" if store != "sqlite" else "SQLite, each side its own"};
code: git {commit}; Python {sys.version.split()[0]}, redis-py {redis_version}; \
{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average \
{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (shared 2-core host). Six caps apply to every
call; every call is allowed unless Redis missed the guard's 250 ms budget (failed by the
caps' policy: {failed}); {calls} calls each way, round-robin in rounds of 100, a round
ending when its releases are told and its call log written. CPU and Redis's time per call
include the release and the call-log write.

| path | p50 / p90 / p99 / p99.9 | calls over 1 ms | outguard CPU per call | redis-server CPU per call | Redis's time per script (scripts) | GC gen 2 / gen 0-1 pauses |
|---|---|---|---|---|---|---|
{table}

Bare PING to the same Redis (redis-py), same run: p50 {r['ping']['p50']:.0f} us, p99 \
{r['ping']['p99']:.0f} us.{ratios}
""")


# ---------------------------------------------------------------- socket timeout A/B

AB_CAPS = [CapSpec(rule, scope, "", {"day": DAY, "hour": 3600, "minute": 60}[window],
                   1_000_000) for rule, scope, window in CAPS]


def ab_specs(i: int) -> list[CapSpec]:
    """The six caps of one call (keys as the policy would fill them)."""
    keys = {"caller_id": f"+8610{i % 50:04d}", "account": f"a{i % 200}",
            "destination": f"+86139{i:08d}", "distinct_callees": f"a{i % 200}",
            "concurrent_account": f"a{i % 200}"}
    return [dataclasses.replace(c, key=keys[c.scope],
                                window_s=0 if c.scope.startswith("concurrent") else c.window_s)
            for c in AB_CAPS]


async def socket_timeout_ab(url: str, calls: int, redis_pid: int,
                            timeout_s: float) -> dict[str, dict[str, float]]:
    """The reservation as the service sends it (``GuardedCaps`` over ``RedisCaps``: every
    call bounded by ``asyncio.timeout``), on two clients of the same redis-server: "A"
    with redis-py's socket timeout as ``outguard.server`` sets it, "B" without one (the
    guard's bound only). Rounds of 100 reserve+release, alternating A and B (the first of
    each round alternating too); CPU of this process and of redis-server per round."""
    socket_s = max(0.5, timeout_s * 2)
    clients = {"A": aioredis.Redis.from_url(url, socket_timeout=socket_s,
                                            socket_connect_timeout=socket_s),
               "B": aioredis.Redis.from_url(url, socket_timeout=None,
                                            socket_connect_timeout=socket_s)}
    guards = {k: GuardedCaps(RedisCaps(c, prefix=f"ab{k}:"), timeout_s=timeout_s)
              for k, c in clients.items()}
    now = time.time()
    out: dict[str, dict[str, list[float] | float]] = {
        k: {"reserve": [], "release": [], "cpu": 0.0, "redis": 0.0} for k in guards}
    failed: dict[str, int] = {}

    async def one(g: GuardedCaps, tag: str, i: int) -> tuple[float, float]:
        call = CallKeys(f"{tag}{i}", "t1", f"a{i % 200}", f"+8610{i % 50:04d}",
                        f"+86139{i:08d}")
        t0 = time.perf_counter()
        answer = await g.reserve(call, ab_specs(i), now + i * 0.001)
        t1 = time.perf_counter()
        if not answer.allowed or answer.unavailable:  # past the guard's bound: counted
            failed[tag[0]] = failed.get(tag[0], 0) + 1
        await g.release(call.call_id, now + i * 0.001)
        return (t1 - t0) * 1e6, (time.perf_counter() - t1) * 1e6

    try:
        for k, g in guards.items():
            await g.check()  # a fresh prefix: the counters are complete
            for i in range(200):
                await one(g, f"w{k}", i)
        for n, start in enumerate(range(0, calls, 100)):
            for k in ("A", "B") if n % 2 == 0 else ("B", "A"):
                got = out[k]
                c0, r0 = time.process_time(), proc_cpu(redis_pid)
                for i in range(start, min(calls, start + 100)):
                    reserve_us, release_us = await one(guards[k], k, i)
                    got["reserve"].append(reserve_us)  # type: ignore[union-attr]
                    got["release"].append(release_us)  # type: ignore[union-attr]
                got["cpu"] += time.process_time() - c0  # type: ignore[operator]
                got["redis"] += proc_cpu(redis_pid) - r0  # type: ignore[operator]
    finally:
        for c in clients.values():
            await c.aclose()
    figures: dict[str, dict[str, float]] = {}
    for k, got in out.items():
        res, rel = got["reserve"], got["release"]
        assert isinstance(res, list) and isinstance(rel, list)
        both = [a + b for a, b in zip(res, rel, strict=True)]
        figures[k] = {"calls": len(res), "failed": failed.get(k, 0),
                      "reserve_p50": pct(res, 50), "reserve_p99": pct(res, 99),
                      "both_p50": pct(both, 50), "both_p99": pct(both, 99),
                      "cpu_us": float(got["cpu"]) / len(res) * 1e6,  # type: ignore[arg-type]
                      "redis_cpu_us": float(got["redis"]) / len(res) * 1e6}  # type: ignore[arg-type]
    return figures


def print_ab(r: dict[str, dict[str, float]], offset: int, calls: int, commit: str,
             timeout_s: float) -> None:
    load = os.getloadavg()
    a, b = r["A"], r["B"]
    print(f"""## redis-py's socket timeout on the reservation: A/B (bench/reserve.py --socket-timeout-ab)

Command: `OUTGUARD_TEST_OFFSET={offset} .venv/bin/python bench/reserve.py --socket-timeout-ab --calls {calls}`;
code: git {commit}; Python {sys.version.split()[0]}, redis-py {redis_version}; \
{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}.
`GuardedCaps` (timeout {timeout_s * 1000:g} ms, `asyncio.timeout`) over two clients of one
redis-server: A with redis-py's socket timeout ({max(0.5, timeout_s * 2):g} s, as
`outguard.server` sets it), B without; six caps a call, reserve then release, rounds of
100 alternating, {calls} calls each; answers past the guard's bound (failed by the caps'
policy): A {a['failed']:.0f}, B {b['failed']:.0f}.

| client | reserve p50 / p99 | reserve+release p50 / p99 | CPU per reserve+release: outguard / redis-server |
|---|---|---|---|
| A: socket timeout | {a['reserve_p50']:.0f} / {a['reserve_p99']:.0f} us | {a['both_p50']:.0f} / {a['both_p99']:.0f} us | {a['cpu_us']:.0f} / {a['redis_cpu_us']:.0f} us |
| B: none (the guard's bound) | {b['reserve_p50']:.0f} / {b['reserve_p99']:.0f} us | {b['both_p50']:.0f} / {b['both_p99']:.0f} us | {b['cpu_us']:.0f} / {b['redis_cpu_us']:.0f} us |
| B / A | {b['reserve_p50'] / a['reserve_p50']:.2f} / {b['reserve_p99'] / a['reserve_p99']:.2f} | {b['both_p50'] / a['both_p50']:.2f} / {b['both_p99'] / a['both_p99']:.2f} | {b['cpu_us'] / a['cpu_us']:.2f} / {b['redis_cpu_us'] / a['redis_cpu_us']:.2f} |
""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--socket-timeout-ab", action="store_true",
                    help="only the A/B of redis-py's socket timeout on the reservation")
    ap.add_argument("--history", type=int, default=0, metavar="N",
                    help="first count N calls of the past day (the accounts and caller IDs"
                         " of the measured calls), so Redis's hashes are as big as in"
                         " service (default 0: fresh keys)")
    ap.add_argument("--no-before", action="store_true",
                    help=f"leave out the client and script of {BEFORE} (loaded from git)")
    ap.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite",
                    help="where the cluster sides' call log goes: a SQLite file each"
                         " (default) or a PostgreSQL server started here (as cluster mode"
                         " runs)")
    ap.add_argument("--rate", type=float, default=0, metavar="CALLS_PER_S",
                    help="start calls at this rate, each side (open loop: a call does not"
                         " wait for the one before), instead of back to back (default 0:"
                         " back to back, the most the loop can do)")
    ap.add_argument("--timeout-ms", type=float, default=250.0,
                    help="the guard's bound ([cluster] timeout_ms) in the A/B (default 250)")
    args = ap.parse_args()
    offset = int(os.environ.get("OUTGUARD_TEST_OFFSET", "900"))
    commit = subprocess.run(["git", "log", "-1", "--format=%h"], capture_output=True,
                            text=True).stdout.strip()
    redis = RedisServer(REDIS_BASE_PORT + offset, "bench-reserve")
    redis.start()
    if args.socket_timeout_ab:
        try:
            assert redis.proc is not None
            ab = asyncio.run(socket_timeout_ab(redis.url, args.calls, redis.proc.pid,
                                               args.timeout_ms / 1000))
        finally:
            redis.stop()
        print_ab(ab, offset, args.calls, commit, args.timeout_ms / 1000)
        return
    before = None if args.no_before else before_caps_module()
    pg, store = None, "sqlite"
    try:
        if args.store == "postgresql":
            pg = PostgresServer(PG_BASE_PORT + offset, "bench-reserve")
            pg.start()
            store = pg_version(pg)
        with tempfile.TemporaryDirectory(prefix="outguard-bench-") as tmp:
            assert redis.proc is not None
            r = asyncio.run(measure(redis.url, args.calls, Path(tmp), redis.proc.pid, before,
                                    args.history, pg, args.rate))
    finally:
        redis.stop()
        if pg is not None:
            pg.stop()
    print_measure(r, offset, args.calls, commit, args.history, store, args.rate)


if __name__ == "__main__":
    main()
