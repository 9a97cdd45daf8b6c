"""Child processes the crash tests kill with SIGKILL (run as ``python -m``).

``import DB LIST FILE``: import FILE into LIST, printing "progress N" as lines are read.
``calls DB``: write call-log batches forever, printing "acked N" after each flush.
"""

from __future__ import annotations

import sys
import time

from outguard.store import CallRecord, ImportProgress, SQLiteStore


def _import(db: str, list_name: str, path: str) -> None:
    store = SQLiteStore(db)

    def progress(p: ImportProgress) -> None:
        print(f"{p.phase} {p.lines}", flush=True)

    store.import_list(list_name, path, progress=progress, progress_every=20_000)
    print("finished", flush=True)
    store.close()


def _calls(db: str) -> None:
    store = SQLiteStore(db, batch_rows=100, batch_interval=0.005)
    n = 0
    for _ in range(100_000):  # bounded; the test kills it long before
        for _ in range(250):
            store.record_decision(CallRecord(
                f"d{n}", f"ch{n}", "ari", "t1", "a1", "+8613800138000",
                f"+86139{n:08d}", "allow", "", "ok", (), 100, time.time(),
            ))
            n += 1
        acked = store.flush()
        print(f"acked {n} {acked}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "import":
        _import(*sys.argv[2:5])
    else:
        _calls(sys.argv[2])
