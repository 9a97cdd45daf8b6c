"""PostgreSQL list import against its floors, in one run: where the time of a big import goes.

    .venv/bin/python -m bench.pg_import --numbers 1000000 --numbers 10000000

Starts its own PostgreSQL cluster (outguard.testing.servers) on 127.0.0.1, port 14000 +
OUTGUARD_TEST_OFFSET (default 900), and stops it at the end. For each size, a file of CN
mobiles (the 8 prefixes of bench/pg_bench.py, random subscribers) and, in the same run:

* floor "COPY": the same numbers, already in E.164, streamed by COPY into a plain logged
  table without index (what PostgreSQL needs at least to take the rows);
* floor "read": the import's own reading and validation (``_Importer.stage``) into a
  staging that keeps nothing (what Python needs at least);
* the import (``PostgresStore.import_list`` into an empty list), split into
  read+validate+COPY, the load (deduplicated and ordered in one sort into the list's new
  leaf), the index build and swap, and the commit, with the CPU seconds of the outguard
  process and of the import's PostgreSQL backend;
* the same file again (replace: nothing changes), then the list deleted; the file into
  SQLite, and that list deleted.

Every figure is printed with its ratio to the floors of the same run: on a shared host
only the ratios compare across runs. Prints a Markdown section for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

import outguard.store.imports as imports
from outguard.store import SQLiteStore
from outguard.store.base import default_normaliser
from outguard.store.pg_imports import PgStaging
from outguard.store.postgres import PostgresStore
from outguard.testing.servers import PG_BASE_PORT, PostgresServer

PREFIXES = ("130", "131", "135", "138", "139", "150", "186", "188")
CHUNK = 1 << 20


def write_numbers(path: Path, e164: Path, n: int) -> None:
    rng = random.Random(15)
    with open(path, "w", encoding="ascii") as out, open(e164, "w", encoding="ascii") as canon:
        for _ in range(n):
            number = f"{rng.choice(PREFIXES)}{rng.randrange(10**8):08d}"
            out.write(number + "\n")
            canon.write("+86" + number + "\n")


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a PostgreSQL backend so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_share(before: list[int], after: list[int]) -> float:
    """The machine's busy share between two /proc/stat 'cpu' lines."""
    delta = [b - a for a, b in zip(before, after)]
    idle = delta[3] + delta[4]
    return 1 - idle / max(1, sum(delta))


def cpu_line() -> list[int]:
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def copy_floor(url: str, e164: Path) -> dict[str, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS floor_copy")
        conn.execute("CREATE TABLE floor_copy (e164 TEXT NOT NULL)")
        pid = conn.info.backend_pid
        c0, t0 = backend_cpu(pid), time.monotonic()
        with open(e164, "rb") as f, conn.cursor() as cur, \
                cur.copy("COPY floor_copy (e164) FROM STDIN") as copy:
            while chunk := f.read(CHUNK):
                copy.write(chunk)
        seconds, server = time.monotonic() - t0, backend_cpu(pid) - c0
        conn.execute("DROP TABLE floor_copy")
    return {"copy_s": seconds, "copy_server_cpu": server}


def read_floor(path: Path) -> dict[str, float]:
    class Discard:
        def begin(self) -> None: ...
        def insert(self, batch: list[str]) -> int: return len(batch)
        def finish(self, accepted: int) -> int: return accepted

    imp = imports._Importer(path, fmt="auto", region="CN", normalise=default_normaliser(),
                            max_line=imports.MAX_LINE, max_rejects_kept=10, reject_file=None,
                            progress=None, progress_every=10**12)
    c0, t0 = own_cpu(), time.monotonic()
    imp.stage(None, Discard())  # type: ignore[arg-type]
    return {"read_s": time.monotonic() - t0, "read_cpu": own_cpu() - c0}


def pg_import(url: str, path: Path) -> dict[str, float]:
    """The import with its phases and both sides' CPU; then a replace with the same file.

    Phases (``PgStaging.phase``): read+validate+COPY into staging; the load (one sort that
    deduplicates and orders, written into the list's new leaf); the index (the primary key
    and expiry index built when the leaf is attached, and the swap); the rest (the
    transaction's commit, the audit record)."""
    marks: dict[str, float] = {}
    begin, phase = PgStaging.begin, PgStaging.phase

    def timed_begin(self: Any) -> None:
        marks["pid"] = self.conn.raw.info.backend_pid
        marks["server0"] = backend_cpu(int(marks["pid"]))
        begin(self)

    def timed_phase(self: Any, name: str) -> None:
        marks[name], marks[name + "_cpu"] = time.monotonic(), own_cpu()
        marks[name + "_server"] = backend_cpu(int(marks["pid"]))
        phase(self, name)

    PgStaging.begin = timed_begin  # type: ignore[method-assign]
    PgStaging.phase = timed_phase  # type: ignore[method-assign]
    store = PostgresStore(url)
    try:
        store.create_list("bench", "dnc")
        c0, t0 = own_cpu(), time.monotonic()
        result = store.import_list("bench", path)
        total = time.monotonic() - t0
        out = {
            "pg_s": total, "accepted": float(result.accepted),
            "read_phase_s": marks["copied"] - t0,
            "load_s": marks["loaded"] - marks["copied"],
            "index_s": marks["indexed"] - marks["loaded"],
            "commit_s": t0 + total - marks["indexed"],
            "client_read_cpu": marks["copied_cpu"] - c0,
            "client_cpu": own_cpu() - c0,
            "server_read_cpu": marks["copied_server"] - marks["server0"],
            "server_load_cpu": marks["loaded_server"] - marks["copied_server"],
            "server_index_cpu": marks["indexed_server"] - marks["loaded_server"],
        }
        t0 = time.monotonic()
        again = store.import_list("bench", path)
        out["replace_s"] = time.monotonic() - t0
        out["replace_load_s"] = marks["loaded"] - marks["copied"]
        out["replace_index_s"] = marks["indexed"] - marks["loaded"]
        assert again.total == result.total and again.added == 0, again
        t0 = time.monotonic()
        store.delete_list("bench")
        out["delete_s"] = time.monotonic() - t0
    finally:
        store.close()
        PgStaging.begin, PgStaging.phase = begin, phase  # type: ignore[method-assign]
    return out


def sqlite_import(path: Path, workdir: Path) -> tuple[float, float]:
    """The import of the file into SQLite, and the delete of the list it made."""
    lite = SQLiteStore(workdir / "bench.db")
    try:
        lite.create_list("bench", "dnc")
        t0 = time.monotonic()
        lite.import_list("bench", path)
        t1 = time.monotonic()
        lite.delete_list("bench")
        return t1 - t0, time.monotonic() - t1
    finally:
        lite.close()
        (workdir / "bench.db").unlink()


def run_size(pg: PostgresServer, n: int, workdir: Path, sqlite: bool) -> dict[str, float]:
    path, e164 = workdir / f"numbers_{n}.txt", workdir / f"e164_{n}.txt"
    write_numbers(path, e164, n)
    url = pg.create_database(f"bench_{n}")
    try:
        load0, stat0 = os.getloadavg()[0], cpu_line()
        r: dict[str, float] = {"numbers": n, "load_start": load0}
        r |= copy_floor(url, e164)
        r |= read_floor(path)
        r |= pg_import(url, path)
        r["sqlite_s"], r["sqlite_delete_s"] = sqlite_import(path, workdir) if sqlite \
            else (float("nan"), float("nan"))
        r |= copy_floor(url, e164) | {"copy_s_before": r["copy_s"]}  # again: the floor drifts
        r["load_end"], r["busy"] = os.getloadavg()[0], busy_share(stat0, cpu_line())
    finally:
        pg.drop_database(f"bench_{n}")
        path.unlink()
        e164.unlink()
    return r


def report(rows: list[dict[str, float]], commit: str, offset: int, sizes: list[int]) -> str:
    cmd = " ".join(f"--numbers {n}" for n in sizes)
    out = [f"## PostgreSQL list import against its floors (bench/pg_import.py)\n",
           f"Command: `OUTGUARD_TEST_OFFSET={offset} .venv/bin/python -m bench.pg_import {cmd}`;",
           f"code: git {commit}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
           "COPY floor: the same numbers in E.164 streamed into a logged table without index",
           "(best of two, before and after the import); read floor: the import's reading and",
           "validation into a staging that keeps nothing. CPU: the outguard process and the",
           "import's PostgreSQL backend, from getrusage and /proc.\n",
           "| numbers | load avg (start / end), host busy | COPY floor | read floor (CPU) |"
           " PostgreSQL import | x COPY floor | read+validate+COPY / sort+load / index+swap /"
           " commit | CPU outguard / backend (read, load, index) | replace, same file (load /"
           " index) | delete the list | SQLite import, delete |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        floor = min(r["copy_s"], r["copy_s_before"])
        out.append(
            f"| {r['numbers']:,.0f} | {r['load_start']:.1f} / {r['load_end']:.1f}, {r['busy']:.0%}"
            f" | {floor:.1f} s | {r['read_s']:.1f} s ({r['read_cpu']:.1f} s) | **{r['pg_s']:.1f} s**"
            f" | **{r['pg_s'] / floor:.1f}x** | {r['read_phase_s']:.1f} / {r['load_s']:.1f} /"
            f" {r['index_s']:.1f} / {r['commit_s']:.1f} s | {r['client_cpu']:.1f} s /"
            f" {r['server_read_cpu']:.1f}, {r['server_load_cpu']:.1f},"
            f" {r['server_index_cpu']:.1f} s | {r['replace_s']:.1f} s ({r['replace_load_s']:.1f}"
            f" / {r['replace_index_s']:.1f}) | {r['delete_s']:.1f} s | {r['sqlite_s']:.1f} s,"
            f" {r['sqlite_delete_s']:.1f} s |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--numbers", type=int, action="append",
                    help="numbers in the file (repeat for several sizes; default 1000000)")
    ap.add_argument("--no-sqlite", action="store_true",
                    help="leave out the SQLite import of the same file")
    args = ap.parse_args()
    sizes = args.numbers or [1_000_000]
    offset = int(os.environ.get("OUTGUARD_TEST_OFFSET", "900"))
    commit = subprocess.run(["git", "log", "-1", "--format=%h"], capture_output=True,
                            text=True, check=False).stdout.strip()
    pg = PostgresServer(PG_BASE_PORT + offset, "bench-import")
    pg.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="outguard-bench-") as tmp:
            for n in sizes:
                rows.append(run_size(pg, n, Path(tmp), not args.no_sqlite))
                print(rows[-1], flush=True)
    finally:
        pg.stop()
    print(report(rows, commit, offset, sizes))


if __name__ == "__main__":
    main()
