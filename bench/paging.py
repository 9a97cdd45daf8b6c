"""What a dashboard page of a large list costs: one page of entries at the start, the
middle and the end of a list, a digit search, the list's count, against the same-run
baseline of the way pages were read before (a scan of the list in Python up to the
offset).

    .venv/bin/python bench/paging.py                    # 1M entries
    .venv/bin/python bench/paging.py --entries 100000 --dir /tmp/ogbench
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from outguard.store import SQLiteStore  # noqa: E402

PAGE = 50


def timed(job: object) -> float:
    started = time.perf_counter()
    job()  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--dir", default=None, help="where the store goes (default: a temp dir)")
    args = ap.parse_args()
    n = args.entries
    work = Path(args.dir or tempfile.mkdtemp(prefix="og-paging-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        numbers = work / "numbers.txt"
        numbers.write_text("".join(f"1390{i:07d}\n" for i in range(n)), encoding="ascii")
        store = SQLiteStore(str(work / "paging.db"))
        try:
            store.create_list("big", "dnc")
            build = timed(lambda: store.import_list("big", numbers, mode="replace"))
            print(f"entries {n}, import {build / 1000:.1f} s")
            print(f"{'what':<28}{'page (ms)':>12}{'scan (ms)':>12}{'ratio':>9}")
            for name, offset in (("first page", 0), ("middle page", n // 2), ("last page", n - PAGE)):
                page = timed(lambda: store.page_entries("big", offset=offset, limit=PAGE))

                def scan(offset: int = offset) -> None:  # the former GET .../entries
                    for i, _ in enumerate(store.iter_entries("big")):
                        if i >= offset + PAGE:
                            break

                base = timed(scan)
                print(f"{name:<28}{page:>12.1f}{base:>12.1f}{base / page:>8.0f}x")
            search = timed(lambda: store.page_entries("big", q="0099999", limit=PAGE))
            print(f"{'digit search':<28}{search:>12.1f}")
            count = timed(lambda: store.count_entries("big"))
            print(f"{'count (count=true)':<28}{count:>12.1f}")
        finally:
            store.close()
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
