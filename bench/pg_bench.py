"""PostgreSQL store benchmarks: list import by phase, and snapshot refresh after a change
made through another instance.

    .venv/bin/python -m bench.pg_bench --numbers 300000 --samples 30
    .venv/bin/python -m bench.pg_bench --numbers 300000 --code /tmp/base   # older code too

Starts its own PostgreSQL cluster (outguard.testing.servers) on 127.0.0.1, port 14000 +
OUTGUARD_BENCH_OFFSET (default 980), and stops it at the end. Every figure is printed
beside a baseline measured in the same run, so only the ratios are compared across runs:

* import: the Python floor (read + normalise into a staging that keeps nothing), the same
  file into SQLite, and into PostgreSQL split into read+normalise+COPY, deduplication and
  merge; then a replace with the same file. ``--code DIR`` runs the PostgreSQL import once
  more with the outguard package found in DIR (a checkout of an older commit), interleaved
  with the current code, for a before/after in one sitting.
* snapshot refresh: a list entry added through one store (instance B) until the snapshot
  of a Screener on another store (instance A) holds it, against the time the rebuild
  alone takes on A and the time the change notification alone takes to arrive.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_BASE_PORT = 14000
PREFIXES = ("130", "131", "135", "138", "139", "150", "186", "188")
POLICY = Path(__file__).with_name("policy.toml")  # its dnc list is the one changed


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def write_numbers(path: Path, n: int) -> None:
    rng = random.Random(15)
    with open(path, "w", encoding="ascii") as out:
        for _ in range(n):
            out.write(f"{rng.choice(PREFIXES)}{rng.randrange(10**8):08d}\n")


# -- import (runs in a child process, so that --code can import another outguard) ----------

def import_child(url: str, path: str, sqlite_dir: str) -> dict[str, float]:
    """One PostgreSQL import (and replace), its phases, plus the floor and SQLite when the
    code has the hooks; printed as JSON by ``--child``."""
    import outguard.store.imports as imports
    from outguard.store.postgres import PostgresStore

    marks: dict[str, float] = {}
    try:  # the code since migration 140: the merge reports its phases
        from outguard.store.pg_imports import PgStaging

        phase = PgStaging.phase

        def timed_phase(self: Any, name: str) -> None:
            marks[name] = time.monotonic()
            if name == "indexed":  # "dedup": the sort and load, "merge": index and swap
                marks["dedup_s"] = marks["loaded"] - marks["copied"]
                marks["merge_s"] = marks["indexed"] - marks["loaded"]
            phase(self, name)

        PgStaging.phase = timed_phase  # type: ignore[method-assign]
    except ImportError:  # older code: staging deduplicated in finish(), merged by _merge
        from outguard.store.postgres import _PgStaging  # type: ignore[attr-defined]

        finish = _PgStaging.finish
        merge = imports._merge

        def timed_finish(self: Any, accepted: int) -> int:
            t0 = time.monotonic()
            try:
                return int(finish(self, accepted))
            finally:
                marks["dedup_s"] = time.monotonic() - t0

        def timed_merge(*args: Any) -> Any:
            t0 = time.monotonic()
            try:
                return merge(*args)
            finally:
                marks["merge_s"] = time.monotonic() - t0

        _PgStaging.finish = timed_finish
        imports._merge = timed_merge
    out: dict[str, float] = {}
    store = PostgresStore(url)
    try:
        name = f"bench_{os.getpid()}"
        store.create_list(name, "dnc")
        t0 = time.monotonic()
        result = store.import_list(name, path)
        out["pg_s"] = time.monotonic() - t0
        out["pg_dedup_s"], out["pg_merge_s"] = marks["dedup_s"], marks["merge_s"]
        out["pg_read_s"] = out["pg_s"] - out["pg_dedup_s"] - out["pg_merge_s"]
        out["accepted"] = result.accepted
        t0 = time.monotonic()
        store.import_list(name, path)
        out["pg_replace_s"] = time.monotonic() - t0
        out["pg_replace_merge_s"] = marks["merge_s"]
    finally:
        store.close()
    return out


def floor_and_sqlite(path: Path, workdir: Path) -> dict[str, float]:
    """The Python floor (parse and normalise only) and the SQLite import, current code."""
    from outguard.store import SQLiteStore
    from outguard.store.base import default_normaliser
    from outguard.store.imports import _Importer

    class Discard:
        def begin(self) -> None: ...
        def insert(self, batch: list[str]) -> int: return len(batch)
        def finish(self, accepted: int) -> int: return accepted

    floor = float("inf")
    for _ in range(2):  # the first pass also loads phonenumbers' metadata
        imp = _Importer(path, fmt="auto", region="CN", normalise=default_normaliser(),
                        max_line=64 * 1024, max_rejects_kept=10, reject_file=None,
                        progress=None, progress_every=10**9)
        t0 = time.monotonic()
        imp.stage(None, Discard())  # type: ignore[arg-type]
        floor = min(floor, time.monotonic() - t0)
    lite = SQLiteStore(workdir / "bench.db")
    try:
        lite.create_list("bench", "dnc")
        t0 = time.monotonic()
        lite.import_list("bench", path)
        sqlite_s = time.monotonic() - t0
    finally:
        lite.close()
    return {"floor_s": floor, "sqlite_s": sqlite_s}


def run_child(code: Path, url: str, path: Path, workdir: Path) -> dict[str, float]:
    """This file as a script in a child whose ``outguard`` is the one in ``code``."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", url, str(path),
         str(workdir)],
        cwd=code, env=env, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"import child ({code}) failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- snapshot refresh ----------------------------------------------------------------------

async def refresh(url: str, samples: int, listed: int, workdir: Path) -> dict[str, float]:
    from outguard.events import SnapshotSwapped
    from outguard.service import Screener
    from outguard.store.aio import AsyncStore
    from outguard.store.postgres import PostgresStore
    from rules.policy import parse_policy

    here, there = PostgresStore(url), PostgresStore(url)
    astore = AsyncStore(here)
    screener = Screener(astore, parse_policy(POLICY.read_text(encoding="utf-8")))
    try:
        there.create_list("dnc", "dnc")
        path = workdir / "listed.txt"
        write_numbers(path, listed)
        there.import_list("dnc", path)
        here.wait_listening()
        await screener.start()
        heard: queue.Queue[float] = queue.Queue()
        here.subscribe(lambda _v: heard.put(time.perf_counter()))
        rebuild_ms: list[float] = []
        await screener.rebuild()  # warm
        for _ in range(max(3, samples // 3)):  # the floor: the rebuild alone, on A
            t0 = time.perf_counter()
            await screener.rebuild()
            rebuild_ms.append((time.perf_counter() - t0) * 1000)
        refresh_ms: list[float] = []
        push_ms: list[float] = []
        for i in range(samples):
            while not heard.empty():
                heard.get_nowait()
            expected = (screener.snapshot.stats.get("numbers", 0) + 1  # type: ignore[union-attr]
                        if screener.snapshot is not None else 1)
            with screener.events.subscribe(100) as sub:
                t0 = time.perf_counter()
                await asyncio.to_thread(there.add_entries, "dnc", [f"+861770000{i:04d}"])
                while True:
                    event = await asyncio.wait_for(sub.get(), 30)
                    if (isinstance(event, SnapshotSwapped)
                            and event.stats.get("numbers", 0) >= expected):
                        break
                refresh_ms.append((time.perf_counter() - t0) * 1000)
            push_ms.append((heard.get(timeout=10) - t0) * 1000)
        return {"listed": listed, "samples": samples,
                "rebuild_p50": pct(rebuild_ms, 50), "rebuild_p99": pct(rebuild_ms, 99),
                "refresh_p50": pct(refresh_ms, 50), "refresh_p99": pct(refresh_ms, 99),
                "refresh_max": max(refresh_ms),
                "push_p50": pct(push_ms, 50), "push_p99": pct(push_ms, 99)}
    finally:
        await screener.stop()
        await astore.aclose()
        there.close()


def cpu_steal() -> tuple[int, int]:
    fields = open("/proc/stat").readline().split()[1:]
    values = [int(f) for f in fields]
    return sum(values), values[7] if len(values) > 7 else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--numbers", type=int, default=300_000)
    ap.add_argument("--samples", type=int, default=30, help="snapshot refresh samples")
    ap.add_argument("--listed", type=int, default=100_000,
                    help="numbers on the list while refresh is measured")
    ap.add_argument("--code", type=Path, default=None,
                    help="also import with the outguard in this checkout (before/after)")
    ap.add_argument("--child", nargs=3, metavar=("URL", "FILE", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(import_child(*args.child)))
        return
    from outguard.testing.servers import PostgresServer

    offset = int(os.environ.get("OUTGUARD_BENCH_OFFSET", "980"))
    commit = subprocess.run(["git", "log", "-1", "--format=%h"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip()
    load_before = os.getloadavg()
    total0, steal0 = cpu_steal()
    pg = PostgresServer(PG_BASE_PORT + offset, "bench")
    pg.start()
    fresh = iter(range(100))
    try:
        with tempfile.TemporaryDirectory(prefix="outguard-pgbench-") as tmp:
            work = Path(tmp)
            path = work / "numbers.txt"
            write_numbers(path, args.numbers)
            base = floor_and_sqlite(path, work)
            runs: dict[str, list[dict[str, float]]] = {"current": []}
            codes = [("current", ROOT)] + ([("before", args.code)] if args.code else [])
            if args.code:
                runs["before"] = []
            for _ in range(2 if args.code else 1):  # interleaved: before, after, before, ...
                for label, code in reversed(codes):  # each in a database of its own
                    url = pg.create_database(f"bench{next(fresh)}")
                    runs[label].append(run_child(code, url, path, work))
            url = pg.create_database(f"bench{next(fresh)}")
            ref = asyncio.run(refresh(url, args.samples, args.listed, work))
    finally:
        pg.stop()
    total1, steal1 = cpu_steal()
    load = os.getloadavg()
    steal = 100 * (steal1 - steal0) / max(1, total1 - total0)

    def best(label: str, key: str) -> float:
        return min(r[key] for r in runs[label])

    n = args.numbers
    cur = {k: best("current", k) for k in runs["current"][0]}
    print(f"""## PostgreSQL import and snapshot refresh (bench/pg_bench.py)

- code: git {commit}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average
  {load_before[0]:.1f} at the start, {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end,
  CPU steal {steal:.0f}% (shared 2-core host); best of {len(runs['current'])} run(s) each
- import of {n:,} numbers ({cur['accepted']:,.0f} distinct), seconds:

| what | seconds | x the Python floor |
|---|---|---|
| Python floor: read + normalise, nothing stored | {base['floor_s']:.1f} | 1.00 |
| SQLite import (same file, same run) | {base['sqlite_s']:.1f} | {base['sqlite_s'] / base['floor_s']:.2f} |
| PostgreSQL import, all | {cur['pg_s']:.1f} | {cur['pg_s'] / base['floor_s']:.2f} |
| ... read + normalise + COPY into staging | {cur['pg_read_s']:.1f} | {cur['pg_read_s'] / base['floor_s']:.2f} |
| ... deduplicate staging (SELECT DISTINCT, index, ANALYZE) | {cur['pg_dedup_s']:.1f} | {cur['pg_dedup_s'] / base['floor_s']:.2f} |
| ... merge into the list (one transaction) | {cur['pg_merge_s']:.1f} | {cur['pg_merge_s'] / base['floor_s']:.2f} |
| PostgreSQL replace with the same file | {cur['pg_replace_s']:.1f} | {cur['pg_replace_s'] / base['floor_s']:.2f} |
| ... its merge | {cur['pg_replace_merge_s']:.1f} | {cur['pg_replace_merge_s'] / base['floor_s']:.2f} |
""")
    if args.code:
        old = {k: best("before", k) for k in runs["before"][0]}
        print(f"""- before/after, same run, interleaved ({args.code}): import {old['pg_s']:.1f} s ->
  {cur['pg_s']:.1f} s ({cur['pg_s'] / old['pg_s']:.2f}x), merge {old['pg_merge_s']:.1f} s ->
  {cur['pg_merge_s']:.1f} s ({cur['pg_merge_s'] / old['pg_merge_s']:.2f}x); replace with the
  same file {old['pg_replace_s']:.1f} s -> {cur['pg_replace_s']:.1f} s
  ({cur['pg_replace_s'] / old['pg_replace_s']:.2f}x), its merge
  {old['pg_replace_merge_s']:.1f} s -> {cur['pg_replace_merge_s']:.1f} s
  ({cur['pg_replace_merge_s'] / old['pg_replace_merge_s']:.2f}x)
""")
    print(f"""- snapshot refresh, {ref['samples']:.0f} samples, a list of {ref['listed']:,.0f}
  numbers: one entry added through instance B until instance A's screener decides from a
  snapshot that holds it: p50 {ref['refresh_p50']:.0f} ms, p99 {ref['refresh_p99']:.0f} ms,
  max {ref['refresh_max']:.0f} ms; the rebuild alone on A (floor): p50
  {ref['rebuild_p50']:.0f} ms ({ref['refresh_p50'] / ref['rebuild_p50']:.2f}x); the change
  notification alone (B's commit -> A's subscriber): p50 {ref['push_p50']:.1f} ms, p99
  {ref['push_p99']:.1f} ms
""")


if __name__ == "__main__":
    main()
