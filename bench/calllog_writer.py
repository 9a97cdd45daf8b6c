"""The call-log writer's cost per call, grouped batches against one statement per change
of row kind, on SQLite and on PostgreSQL, in one run.

    .venv/bin/python -m bench.calllog_writer --calls 3000

Each call enqueues its decision and, after the next call's decision, its outcome (the
interleaving of a busy PBX: short calls end while the next ones are decided), 50 calls
every 50 ms (1,000 calls/s, the writer's batch interval); then a flush. Two writers per
engine: "now" (``statement_runs``: every decision of a batch, then every outcome, between
redos) and "before" (the batch cut at every change of row kind, as the writer did before
5206fda: each run a statement, on PostgreSQL a round trip), taking turns in rounds of
500 calls. Per side: the writer thread's CPU per call, and on PostgreSQL the CPU of the
writer's server process (``pg_stat_activity``, application_name ``outguard-writer``) too.
PostgreSQL is a server this script starts on 127.0.0.1 (port 14000 +
OUTGUARD_TEST_OFFSET, default 900; the test harness's cluster: fsync off). Prints a
Markdown section for bench/RESULTS.md with the commit.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procstat import CLK_TCK, parse_pid_stat
from outguard.store import open_store, writer
from outguard.store.sqlite import SQLiteStore
from outguard.testing.servers import PG_BASE_PORT, PostgresServer

ROUND = 500
BURST = 50


def one_run_per_kind(batch: list[tuple[int, tuple[Any, ...]]]) -> list[tuple[int, list[tuple[Any, ...]]]]:
    """The writer's runs before 5206fda: a new statement at every change of row kind."""
    runs: list[tuple[int, list[tuple[Any, ...]]]] = []
    for kind, row in batch:
        if runs and runs[-1][0] == kind:
            runs[-1][1].append(row)
        else:
            runs.append((kind, [row]))
    return runs


class Side:
    """One store whose writer groups its batches one way or the other."""

    def __init__(self, store: SQLiteStore, grouped: bool, pg: PostgresServer | None,
                 database: str) -> None:
        self.store, self.grouped = store, grouped
        self.writer_cpu = self.server_cpu = 0.0
        self.calls = 0
        self.batches = 0
        self.server_pid = _writer_backend(pg, database) if pg is not None else None

    def thread_ticks(self) -> int:
        thread = self.store.writer._thread
        assert thread is not None and thread.native_id is not None
        stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        return parse_pid_stat(stat).own_ticks

    def server_ticks(self) -> int:
        if self.server_pid is None:
            return 0
        return parse_pid_stat(Path(f"/proc/{self.server_pid}/stat").read_text()).own_ticks


def _writer_backend(pg: PostgresServer, database: str) -> int | None:
    out = pg.psql("SELECT pid FROM pg_stat_activity WHERE application_name ="
                  f" 'outguard-writer' AND datname = '{database}'").split()
    return int(out[0]) if out else None


def run_round(side: Side, start: int, tag: str) -> None:
    writer.statement_runs = (real_runs if side.grouped
                             else one_run_per_kind)
    store = side.store
    t0, s0, b0 = side.thread_ticks(), side.server_ticks(), store.writer.batches_committed
    for i in range(start, start + ROUND):
        store.writer.enqueue_call(row(i, tag))
        if i > start:
            store.writer.enqueue_outcome((None, time.time(), 0.0, 16, None, f"{tag}{i - 1}"))
        if (i - start) % BURST == BURST - 1:
            time.sleep(0.05)
    store.writer.enqueue_outcome((None, time.time(), 0.0, 16, None, f"{tag}{start + ROUND - 1}"))
    store.flush()
    side.writer_cpu += (side.thread_ticks() - t0) / CLK_TCK
    side.server_cpu += (side.server_ticks() - s0) / CLK_TCK
    side.batches += store.writer.batches_committed - b0
    side.calls += ROUND


real_runs = writer.statement_runs


def row(i: int, tag: str) -> tuple[Any, ...]:
    return (f"{tag}{i}", f"PJSIP/1001-{i:08x}", "ari", "default", f"a{i % 200}",
            f"+861088{i % 50:06d}", f"+86139{i:08d}", "allow", "", "", "", 100, time.time(),
            "", "", "bench")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=3000, help="calls per side (default 3000)")
    args = ap.parse_args()
    offset = int(os.environ.get("OUTGUARD_TEST_OFFSET", "900"))
    commit = subprocess.run(["git", "log", "-1", "--format=%h"], capture_output=True,
                            text=True).stdout.strip()
    rounds = max(1, args.calls // ROUND)
    pg = PostgresServer(PG_BASE_PORT + offset, "bench-writer")
    pg.start()
    results: dict[tuple[str, str], Side] = {}
    try:
        version = pg.psql("SHOW server_version").split()[0]
        with tempfile.TemporaryDirectory(prefix="outguard-bench-writer-") as tmp:
            sides: dict[tuple[str, str], Side] = {}
            for engine in ("sqlite", "postgresql"):
                for name in ("now", "before"):
                    database = f"writer_{name}"
                    if engine == "sqlite":
                        store = SQLiteStore(Path(tmp) / f"{name}.db")
                    else:
                        store = open_store(pg.create_database(database),
                                           spool_dir=str(Path(tmp) / f"{name}.spool"))
                    sides[engine, name] = Side(store, name == "now",
                                               pg if engine == "postgresql" else None,
                                               database)
            try:
                for n in range(rounds):
                    order = list(sides) if n % 2 == 0 else list(reversed(sides))
                    for key in order:
                        run_round(sides[key], n * ROUND, key[1][0])
            finally:
                writer.statement_runs = real_runs
                for side in sides.values():
                    side.store.close()
            results = sides
    finally:
        pg.stop()
    load = os.getloadavg()
    lines = []
    for engine in ("sqlite", "postgresql"):
        now, before = results[engine, "now"], results[engine, "before"]
        for name, side in (("now", now), ("before", before)):
            server = (f"{side.server_cpu / side.calls * 1e6:.0f} us"
                      if engine == "postgresql" else "-")
            lines.append(f"| {engine} | {name} | {side.writer_cpu / side.calls * 1e6:.0f} us"
                         f" | {server} | {side.batches} |")
        ratio = (now.writer_cpu / before.writer_cpu) if before.writer_cpu else float("nan")
        lines.append(f"| {engine} | now / before | {ratio:.2f}x | "
                     + (f"{now.server_cpu / before.server_cpu:.2f}x"
                        if engine == "postgresql" and before.server_cpu else "-") + " | |")
    table = "\n".join(lines)
    print(f"""## The call-log writer's CPU per call (bench/calllog_writer.py)

Command: `OUTGUARD_TEST_OFFSET={offset} .venv/bin/python -m bench.calllog_writer --calls \
{args.calls}`; code: git {commit}; Python {sys.version.split()[0]}, PostgreSQL {version} \
(127.0.0.1, fsync off); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load \
average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (shared 2-core host). Each call a
decision and, after the next call's decision, its outcome; {BURST} calls every 50 ms;
{rounds * ROUND} calls per side, the sides taking turns in rounds of {ROUND}. "now": the
writer's grouped batches; "before": a statement at every change of row kind.

| engine | writer | writer thread CPU per call | its PostgreSQL server process's CPU per call | batches |
|---|---|---|---|---|
{table}
""")


if __name__ == "__main__":
    main()
