"""Store benchmarks: list import, call-log write throughput, snapshot streaming.

    .venv/bin/python bench/store.py                      # full size: 10M numbers, 1M calls
    .venv/bin/python bench/store.py --numbers 1000000 --calls 200000 --dir /tmp/ogbench

Targets: import of 10M numbers <= 60 s (normalisation included); call-log writes
>= 20k rows/s sustained; snapshot source streaming of 10M entries (reported).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from outguard.store import CallRecord, ImportProgress, SQLiteStore  # noqa: E402
from rules.numbers import normalise  # noqa: E402

logger = logging.getLogger("bench.store")

MULT = 2654435761  # coprime with 7e9: i -> distinct, scattered numbers
SPAN = 7_000_000_000


def number(i: int) -> str:
    return str(13_000_000_000 + (i * MULT) % SPAN)


def write_numbers(path: Path, n: int) -> float:
    started = time.perf_counter()
    chunk = 200_000
    with open(path, "w", encoding="ascii") as fh:
        for lo in range(0, n, chunk):
            fh.write("".join(number(i) + "\n" for i in range(lo, min(n, lo + chunk))))
    return time.perf_counter() - started


def bench_normalise(n: int) -> float:
    """Per-call cost of rules.numbers.normalise on the generated shape, in microseconds."""
    sample = [number(i) for i in range(n)]
    started = time.perf_counter()
    for raw in sample:
        try:
            normalise(raw)
        except ValueError:
            pass
    return (time.perf_counter() - started) / n * 1e6


def bench_import(store: SQLiteStore, path: Path, n: int) -> None:
    store.create_list("bench", "register")
    marks: dict[str, float] = {}

    def progress(p: ImportProgress) -> None:
        marks.setdefault(p.phase, time.perf_counter())

    started = time.perf_counter()
    result = store.import_list("bench", path, progress=progress, progress_every=1_000_000)
    print(f"import {n:,} lines: {result.seconds:.1f} s ({n / result.seconds:,.0f} lines/s);"
          f" read+normalise+stage {marks['merging'] - started:.1f} s,"
          f" merge {marks['done'] - marks['merging']:.1f} s;"
          f" accepted {result.accepted:,}, rejected {result.rejected:,},"
          f" duplicates {result.duplicates:,}, total {result.total:,}")
    result = store.import_list("bench", path)
    print(f"re-import (replace, same file) {n:,} lines: {result.seconds:.1f} s;"
          f" added {result.added:,}, removed {result.removed:,}")


def bench_snapshot(store: SQLiteStore) -> None:
    started = time.perf_counter()
    data = store.load_store_data(datetime.now(timezone.utc))
    count = 0
    for _entry in data.entries:
        count += 1
    seconds = time.perf_counter() - started
    print(f"snapshot source: streamed {count:,} entries in {seconds:.1f} s"
          f" ({count / max(seconds, 1e-9):,.0f} entries/s)")


def bench_calls(store: SQLiteStore, n: int) -> None:
    now = time.time()
    started = time.perf_counter()
    for i in range(n):
        store.record_decision(CallRecord(
            f"{i:032x}", f"PJSIP/1001-{i:08x}", "ari", "t1", f"a{i % 50}", "+8613800138000",
            "+86" + number(i), "allow" if i % 10 else "block", "", "ok", (), 120, now + i / 1000,
        ))
    enqueued = time.perf_counter() - started
    store.flush()
    seconds = time.perf_counter() - started
    print(f"call log: {n:,} rows committed in {seconds:.1f} s ({n / seconds:,.0f} rows/s);"
          f" {store.writer.batches_committed:,} batches; enqueueing them took"
          f" {enqueued / n * 1e6:.2f} us per row on the caller's thread")
    started = time.perf_counter()
    replayed = sum(1 for _ in store.iter_counter_rows_since(now - 1))
    seconds = time.perf_counter() - started
    print(f"counter replay source: {replayed:,} allowed rows in {seconds:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=10_000_000, help="lines to import")
    parser.add_argument("--calls", type=int, default=1_000_000, help="call-log rows to write")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    work = args.dir or Path(tempfile.mkdtemp(prefix="outguard-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"normalise: {bench_normalise(200_000):.2f} us per number")
        path = work / "numbers.txt"
        print(f"generated {args.numbers:,} lines in {write_numbers(path, args.numbers):.1f} s"
              f" ({path.stat().st_size / 1e6:.0f} MB)")
        db = work / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        store = SQLiteStore(db)
        try:
            if args.numbers:
                bench_import(store, path, args.numbers)
                bench_snapshot(store)
            if args.calls:
                bench_calls(store, args.calls)
        finally:
            store.close()
        print(f"database size {os.path.getsize(db) / 1e6:.0f} MB")
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
