"""Cluster-mode benchmarks: Redis reservation round trip, PostgreSQL import, change push.

    .venv/bin/python bench/cluster.py --calls 5000 --numbers 1000000

Starts its own redis-server and PostgreSQL cluster (outguard.testing.servers) on
127.0.0.1 ports from OUTGUARD_TEST_OFFSET (default 900) and stops them at the end.
Prints a Markdown section for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from outguard.cluster.caps import CallKeys, CapSpec, RedisCaps
from outguard.store import SQLiteStore
from outguard.store.postgres import PostgresStore
from outguard.testing.servers import PG_BASE_PORT, REDIS_BASE_PORT, PostgresServer, RedisServer

DAY = 86400


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def reservation(url: str, calls: int) -> dict[str, float]:
    caps = RedisCaps.from_url(url, prefix="bench:", timeout_s=5)
    now = time.time()
    await caps.mark_complete(now)
    specs = lambda i: [  # noqa: E731
        CapSpec("caller_daily", "caller_id", f"+8610{i % 50:04d}", DAY, 10**6),
        CapSpec("acct_hour", "account", f"a{i % 200}", 3600, 10**6),
        CapSpec("acct_minute", "account", f"a{i % 200}", 60, 10**6),
        CapSpec("dest_day", "destination", f"+86139{i:08d}", DAY, 3),
        CapSpec("callees", "distinct_callees", f"a{i % 200}", DAY, 10**6),
        CapSpec("conc", "concurrent_account", f"a{i % 200}", 0, 30),
    ]
    for i in range(200):  # warm up: script loaded, connection open
        await caps.reserve(CallKeys(f"w{i}", "t1", f"a{i % 200}", "+8610", f"+86138{i:08d}"),
                           specs(i), now)
    ping_us: list[float] = []
    for _ in range(calls):  # the bare round trip, for scale
        t0 = time.perf_counter()
        await caps.client.ping()
        ping_us.append((time.perf_counter() - t0) * 1e6)
    reserve_us: list[float] = []
    release_us: list[float] = []
    for i in range(calls):
        call = CallKeys(f"b{i}", "t1", f"a{i % 200}", f"+8610{i % 50:04d}", f"+86139{i:08d}")
        t0 = time.perf_counter()
        answer = await caps.reserve(call, specs(i), now + i * 0.01)
        t1 = time.perf_counter()
        assert answer.allowed
        await caps.release(call.call_id, now + i * 0.01)
        t2 = time.perf_counter()
        reserve_us.append((t1 - t0) * 1e6)
        release_us.append((t2 - t1) * 1e6)
    await caps.aclose()
    return {"reserve_p50": pct(reserve_us, 50), "reserve_p99": pct(reserve_us, 99),
            "release_p50": pct(release_us, 50), "release_p99": pct(release_us, 99),
            "ping_p50": pct(ping_us, 50), "ping_p99": pct(ping_us, 99), "calls": calls}


def import_numbers(url: str, numbers: int, workdir: Path) -> dict[str, float]:
    path = workdir / "numbers.txt"
    rng = random.Random(15)
    prefixes = ("130", "131", "135", "138", "139", "150", "186", "188")
    with open(path, "w") as out:
        for _ in range(numbers):
            out.write(f"{rng.choice(prefixes)}{rng.randrange(10**8):08d}\n")
    lite = SQLiteStore(workdir / "bench.db")
    try:
        lite.create_list("bench_dnc", "dnc")
        t0 = time.monotonic()
        lite.import_list("bench_dnc", path)
        sqlite_s = time.monotonic() - t0
    finally:
        lite.close()
    store = PostgresStore(url)
    try:
        store.create_list("bench_dnc", "dnc")
        t0 = time.monotonic()
        result = store.import_list("bench_dnc", path)
        seconds = time.monotonic() - t0
        t0 = time.monotonic()
        again = store.import_list("bench_dnc", path)  # replace with the same file
        again_s = time.monotonic() - t0
    finally:
        store.close()
    return {"numbers": numbers, "accepted": result.accepted, "seconds": seconds,
            "sqlite_s": sqlite_s,
            "replace_same_s": again_s, "total": again.total}


def change_push(url: str, samples: int) -> dict[str, float]:
    here, there = PostgresStore(url), PostgresStore(url)
    try:
        here.wait_listening()
        heard: queue.Queue[tuple[int, float]] = queue.Queue()
        here.subscribe(lambda v: heard.put((v, time.perf_counter())))
        there.create_list("push", "dnc")
        heard.get(timeout=10)
        lat: list[float] = []
        for i in range(samples):
            t0 = time.perf_counter()  # the change is committed inside add_entries
            there.add_entries("push", [f"1380013{i:04d}"])
            version, at = heard.get(timeout=10)
            assert version == there.data_version()
            lat.append((at - t0) * 1000)
    finally:
        here.close()
        there.close()
    return {"samples": samples, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
            "max_ms": max(lat)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--numbers", type=int, default=1_000_000)
    ap.add_argument("--pushes", type=int, default=100)
    args = ap.parse_args()
    offset = int(os.environ.get("OUTGUARD_TEST_OFFSET", "900"))
    commit = subprocess.run(["git", "log", "-1", "--format=%h %s"], capture_output=True,
                            text=True).stdout.strip()
    redis = RedisServer(REDIS_BASE_PORT + offset, "bench")
    pg = PostgresServer(PG_BASE_PORT + offset, "bench")
    redis.start()
    pg.start()
    try:
        res = asyncio.run(reservation(redis.url, args.calls))
        with tempfile.TemporaryDirectory(prefix="outguard-bench-") as tmp:
            imp = import_numbers(pg.url(), args.numbers, Path(tmp))
        push = change_push(pg.url(), args.pushes)
    finally:
        pg.stop()
        redis.stop()
    load = os.getloadavg()
    print(f"""## Cluster mode (bench/cluster.py)

- code: git {commit}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average
  {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (shared 2-core host)
- Redis reservation (six caps per call: caller ID per day, account per hour and minute,
  destination per day, distinct callees, concurrent calls), {res['calls']:.0f} calls in
  sequence against redis-server on 127.0.0.1: reserve p50 {res['reserve_p50']:.0f} us,
  p99 {res['reserve_p99']:.0f} us; release p50 {res['release_p50']:.0f} us, p99
  {res['release_p99']:.0f} us; a bare PING in the same run p50 {res['ping_p50']:.0f} us, p99
  {res['ping_p99']:.0f} us
- PostgreSQL import of {imp['numbers']:,} numbers (COPY into staging, one merge
  transaction): {imp['seconds']:.1f} s ({imp['accepted']:,} distinct); replacing the list
  with the same file: {imp['replace_same_s']:.1f} s; the same file into SQLite in the same
  run: {imp['sqlite_s']:.1f} s
- change pushed to another instance (write call on one -> subscriber called on the other,
  LISTEN/NOTIFY; includes the write itself),
  {push['samples']:.0f} samples: p50 {push['p50_ms']:.1f} ms, p99 {push['p99_ms']:.1f} ms,
  max {push['max_ms']:.1f} ms
""")


if __name__ == "__main__":
    main()
