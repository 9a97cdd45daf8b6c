"""Process-wide measurements the adapters and the store take as they work, for /metrics.

These are prometheus-client metrics that belong to no registry: each API app registers them
in its own registry (``outguard.api.metrics.registry``), beside the figures it collects from
the event hub. Observing one costs a lock and an addition; nothing here does I/O.

* ``ROUNDTRIP``: one request to Asterisk and its reply, by interface (``ari``: one REST
  call; ``agi``: one FastAGI command; ``ami``: one action) and operation (a bounded label:
  never a channel id).
* ``SCREENING_FAILURES``: calls outguard could not screen, by adapter and by what the
  caller got (``closed``: refused; ``open``: dialled unscreened; ``dialplan``: the verdict
  ``failed`` handed to the dialplan's failure branch, which applies its own
  ``OUTGUARD_FAIL_MODE``).
* ``STORE_WRITE_ERRORS``: writes the store could not commit (call-log batches, rows dropped,
  other writes failing inside SQLite (a constraint a caller broke is not counted), the
  writer stopping).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram, disable_created_metrics

# one sample per series: the "_created" twins double the series count for nothing here
disable_created_metrics()  # type: ignore[no-untyped-call]

#: seconds; Asterisk answers on loopback in tenths of a millisecond, over a WAN in tens
ROUNDTRIP_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                     0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

ROUNDTRIP = Histogram(
    "outguard_asterisk_roundtrip_seconds",
    "One request to Asterisk and its reply (ari: REST call, agi: FastAGI command, "
    "ami: action), failed ones included.",
    ["interface", "operation"], buckets=ROUNDTRIP_BUCKETS, registry=None)

SCREENING_FAILURES = Counter(
    "outguard_screening_failures_total",
    "Calls outguard could not screen, by adapter and outcome (closed: refused, open: "
    "dialled unscreened, dialplan: handed to the dialplan's failure branch).",
    ["adapter", "mode"], registry=None)

STORE_WRITE_ERRORS = Counter(
    "outguard_store_write_errors_total",
    "Writes the store could not commit, by kind (call_batch: a call-log batch retried row "
    "by row, call_row: a call-log row dropped, store_refused: the store refused a call-log "
    "batch or a spool replay (read-only, full: the rows wait in the spool), job: another "
    "write failed in SQLite, writer: the writer thread stopped).",
    ["kind"], registry=None)

# every series the alerts and the dashboard look at exists from the start, at 0
for _adapter, _mode in (("ari", "closed"), ("ari", "open"), ("agi", "dialplan")):
    SCREENING_FAILURES.labels(_adapter, _mode)
for _kind in ("call_batch", "call_row", "store_refused", "job", "writer"):
    STORE_WRITE_ERRORS.labels(_kind)


@contextmanager
def roundtrip(interface: str, operation: str) -> Iterator[None]:
    """Time the block as one round trip to Asterisk (also when it raises)."""
    began = time.perf_counter()
    try:
        yield
    finally:
        ROUNDTRIP.labels(interface, operation).observe(time.perf_counter() - began)


def ari_operation(method: str, path: str) -> str:
    """``POST /channels/1712.5/continue`` -> ``POST channels/continue``: the path without
    its ids (every second segment names one)."""
    segments = [s for s in path.split("?", 1)[0].split("/") if s]
    kept = [s for i, s in enumerate(segments) if i % 2 == 0 or s == "info"]
    return f"{method} {'/'.join(kept)}"


def agi_operation(line: str) -> str:
    """``SET VARIABLE "X" "1"`` -> ``SET VARIABLE``; ``EXEC MSet ...`` -> ``EXEC MSet``."""
    words = line.split(" ", 2)
    return " ".join(w.strip('"') for w in words[:2]) if len(words) > 1 else words[0]
