"""The garbage collector's full pass in a started outguard, before and after the start's
heap is frozen (``outguard.server.freeze_startup_heap``, what ``outguard serve`` does once
it listens), in one run.

    .venv/bin/python -m bench.gc_pause --numbers 1000000

An embedded Screener over the demo policy (rules/presets/demo.toml) and its "dnc" list of ``--numbers`` numbers
(imported into a SQLite store first), started as the service starts it (the snapshot
built); then ``gc.collect()`` (a full pass: what Python runs now and then on its own,
on the thread that allocates, i.e. the event loop) timed ``--passes`` times, the heap
frozen, and timed again; then once more after a snapshot rebuild (the snapshot in
force is no longer the frozen one). A full pass holds the loop: every decision waiting behind it
waits that long. Prints a Markdown section for bench/RESULTS.md with the commit.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.procstat import median
from outguard import policy_file
from outguard.server import freeze_startup_heap
from outguard.service import Screener
from outguard.store.aio import AsyncStore
from outguard.store.sqlite import SQLiteStore



def full_passes(n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        gc.collect()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


async def measure(numbers: int, passes: int, tmp: Path) -> dict[str, object]:
    listed = tmp / "dnc.csv"
    with listed.open("w") as out:
        for i in range(numbers):
            out.write(f"+86139{i:08d}\n")
    sync = SQLiteStore(tmp / "outguard.db")
    sync.create_list("dnc", "dnc")
    sync.import_list("dnc", listed)
    store = AsyncStore(sync)
    screener = Screener(store, policy_file.read(None))  # the demo policy
    await screener.start()
    try:
        tracked = len(gc.get_objects())
        before = full_passes(passes)
        frozen = freeze_startup_heap()
        after = full_passes(passes)
        await screener.rebuild()  # a change anywhere: a new snapshot, not frozen
        gc.collect()  # the old one's cycles, if any
        refreshed = full_passes(passes)
    finally:
        await screener.stop()
        await store.aclose()
        gc.unfreeze()
    return {"tracked": tracked, "frozen": frozen, "before": before, "after": after,
            "refreshed": refreshed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--numbers", type=int, default=1_000_000,
                    help="numbers on the do-not-call list (default 1,000,000)")
    ap.add_argument("--passes", type=int, default=10, help="full passes timed each way")
    args = ap.parse_args()
    commit = subprocess.run(["git", "log", "-1", "--format=%h"], capture_output=True,
                            text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="outguard-bench-gc-") as tmp:
        r = asyncio.run(measure(args.numbers, args.passes, Path(tmp)))
    before, after, refreshed = r["before"], r["after"], r["refreshed"]
    assert isinstance(before, list) and isinstance(after, list) and isinstance(refreshed, list)
    b, a, f = median(before) or 0.0, median(after) or 0.0, median(refreshed) or 0.0
    load = os.getloadavg()
    print(f"""## A full garbage-collector pass in a started outguard (bench/gc_pause.py)

Command: `.venv/bin/python -m bench.gc_pause --numbers {args.numbers} --passes \
{args.passes}`; code: git {commit}; Python {sys.version.split()[0]}; \
{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {load[0]:.1f} / \
{load[1]:.1f} / {load[2]:.1f} (shared 2-core host). An embedded Screener, the demo
policy, its "dnc" list holding {args.numbers:,} numbers, started (snapshot built):
{r['tracked']:,} objects tracked by the collector; {r['frozen']:,} frozen.

| heap | full pass, median | max |
|---|---|---|
| as started | {b:.1f} ms | {max(before):.1f} ms |
| frozen after the start | {a:.2f} ms | {max(after):.2f} ms |
| frozen, then the snapshot rebuilt (a change anywhere) | {f:.2f} ms | {max(refreshed):.2f} ms |

frozen / as started: {a / b if b else float('nan'):.3f}x; after a rebuild \
{f / b if b else float('nan'):.3f}x.
""")


if __name__ == "__main__":
    main()
