"""Child for test_pg_spool: open the store, say "ready", wait for "go" (PostgreSQL then
refuses connections), write 300 call-log rows, print how many were acknowledged (flushed:
in the spool file), then wait to be killed."""

from __future__ import annotations

import sys
import time

from outguard.store import CallRecord
from outguard.store.postgres import PostgresStore


def main(url: str, spool: str) -> None:
    store = PostgresStore(url, spool_dir=spool, retry_s=3600, batch_interval=0.01)
    print("ready", flush=True)
    sys.stdin.readline()
    now = time.time()
    for i in range(300):
        store.record_decision(CallRecord(
            f"d{i:06d}", "", "ari", "t1", "a1", "+8613800138000", "+8613900000000", "allow",
            "", "ok", (), 90, now + i * 1e-3))
    store.flush()
    print(store.write_health()["spool_rows"], flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
