"""Policy replay benchmark: a week of a 2,000-seat call centre against a candidate policy.

    .venv/bin/python bench/replay.py                              # full: 2,000 seats x 7 days
    .venv/bin/python bench/replay.py --seats 200 --per-seat-day 100   # a quick look
    .venv/bin/python bench/replay.py --postgres ...               # the same, from PostgreSQL

Writes a call log straight into a fresh SQLite store (2,000 seats x 200 attempts a day x
7 days = 2.8M calls by default, CN mobiles, 08:00-22:00 Shanghai time, 20 campaigns,
90% marketing), puts 1M numbers on a dnc list (5% of the calls hit it), then times
``outguard.replay.replay`` with a candidate policy that blocks the dnc list, keeps
marketing to 09:00-21:00 and caps each seat at 150 calls a day and each callee at one
call a day (so every kind of rule is exercised and many verdicts change).
Target: the whole week in minutes (issue 17).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from outguard.replay import replay  # noqa: E402
from outguard.store import SQLiteStore, open_store  # noqa: E402
from rules.classification import prewarm_cn_mobiles  # noqa: E402
from rules.policy import parse_policy  # noqa: E402

START = datetime(2026, 11, 16, 0, 0, tzinfo=UTC).timestamp()  # Monday 08:00 Shanghai
SEED = 20261202
CANDIDATE = """
default_region = "CN"
timezone = "Asia/Shanghai"
[lists.dnc]
kind = "dnc"
[windows.marketing]
hours = { daily = "09:00-21:00" }
[[rules]]
id = "dnc"
kind = "lists"
lists = ["dnc"]
[[rules]]
id = "marketing_hours"
kind = "time_window"
window = "marketing"
purposes = ["marketing"]
[[rules]]
id = "seat_daily"
kind = "cap"
scope = "account"
limit = 150
window = "day"
[[rules]]
id = "callee_daily"
kind = "cap"
scope = "destination"
limit = 1
window = "day"
"""


def mobile(i: int) -> str:
    return f"+86138{(i * 2654435761) % 100_000_000:08d}"


CALL_COLUMNS = ("decision_id", "channel_id", "adapter", "tenant", "account", "caller_id",
                "destination", "verdict", "rule", "reason", "shadow", "decision_us", "at",
                "purpose", "campaign")


def call_days(seats: int, days: int, per_seat_day: int, dnc: int) -> Iterator[list[tuple[Any, ...]]]:
    """The call log, a day at a time in time order (the same rows for either store)."""
    rng = random.Random(SEED)
    n = 0
    callees = dnc * 20  # 5% of the calls go to listed numbers
    day_calls = seats * per_seat_day
    for day in range(days):
        base = START + day * 86400
        rows = []
        for k in range(day_calls):
            at = base + rng.random() * 14 * 3600  # 08:00-22:00 Shanghai
            seat = k % seats
            rows.append((
                f"d{n}", "", "ari", f"t{seat % 20}", f"seat{seat}", "+861088886666",
                mobile(rng.randrange(callees)), "allow", "", "ok", "", 12, at,
                "marketing" if rng.random() < 0.9 else "service", f"c{seat % 20}",
            ))
            n += 1
        rows.sort(key=lambda r: r[12])
        yield rows


def build(path: Path, seats: int, days: int, per_seat_day: int, dnc: int) -> int:
    SQLiteStore(path).close()  # the schema
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO lists (name, kind, scope, created_at) VALUES ('dnc','dnc','global',0)")
    conn.executemany("INSERT INTO list_entries (list_id, e164, created_at) VALUES (1, ?, 0)",
                     ((mobile(i),) for i in range(dnc)))
    n = 0
    for rows in call_days(seats, days, per_seat_day, dnc):
        conn.executemany(f"INSERT INTO calls ({', '.join(CALL_COLUMNS)})"
                         f" VALUES ({', '.join('?' * len(CALL_COLUMNS))})", rows)
        n += len(rows)
    conn.execute("COMMIT")
    conn.close()
    return n


def build_postgres(url: str, seats: int, days: int, per_seat_day: int, dnc: int) -> int:
    """The same call log and dnc list in PostgreSQL (COPY), then ANALYZE."""
    import psycopg

    open_store(url).close()  # the schema
    n = 0
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO lists (name, kind, scope, created_at)"
                        " VALUES ('dnc', 'dnc', 'global', 0) RETURNING id")
            (lid,) = cur.fetchone()  # type: ignore[misc]
            with cur.copy("COPY list_entries (list_id, e164, created_at) FROM STDIN") as copy:
                for i in range(dnc):
                    copy.write_row((lid, mobile(i), 0))
            with cur.copy(f"COPY calls ({', '.join(CALL_COLUMNS)}) FROM STDIN") as copy:
                for rows in call_days(seats, days, per_seat_day, dnc):
                    for row in rows:
                        copy.write_row(row)
                    n += len(rows)
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE calls")
        conn.execute("ANALYZE list_entries")
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seats", type=int, default=2000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--per-seat-day", type=int, default=200)
    ap.add_argument("--dnc", type=int, default=1_000_000)
    ap.add_argument("--dir", default=None, help="Work directory (default: a temporary one).")
    ap.add_argument("--postgres", action="store_true",
                    help="Replay from PostgreSQL: a throw-away server on 127.0.0.1, port "
                         "14010 + OUTGUARD_TEST_OFFSET (stopped at the end).")
    args = ap.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="outguard-bench-replay-"))
    work.mkdir(parents=True, exist_ok=True)
    server = None
    t = time.perf_counter()
    try:
        if args.postgres:
            from outguard.testing.servers import PG_BASE_PORT, PostgresServer

            offset = int(os.environ.get("OUTGUARD_TEST_OFFSET", "0"))
            server = PostgresServer(PG_BASE_PORT + 10 + offset, "bench-replay")
            server.start()
            target: str | Path = server.url()
            calls = build_postgres(str(target), args.seats, args.days, args.per_seat_day,
                                   args.dnc)
        else:
            target = work / "replay.db"
            if target.exists():
                target.unlink()
            calls = build(target, args.seats, args.days, args.per_seat_day, args.dnc)
        built = time.perf_counter() - t
        t = time.perf_counter()
        prewarm_cn_mobiles()
        warm = time.perf_counter() - t
        store = open_store(target)
        try:
            cpu0 = time.process_time()
            report = replay(store, parse_policy(CANDIDATE, "candidate.toml"), START,
                            START + args.days * 86400, examples=3).as_dict()
            cpu = time.process_time() - cpu0
        finally:
            store.close()
    finally:
        if server is not None:
            server.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("# outguard policy replay benchmark\n")
    print(f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"- store: {'PostgreSQL (COPY-loaded, ANALYZEd)' if args.postgres else 'SQLite'}")
    print(f"- call log: {calls:,} calls ({args.seats:,} seats x {args.per_seat_day} a day x "
          f"{args.days} days), dnc list {args.dnc:,} numbers; written in {built:.1f} s; "
          f"CN mobile segments prewarmed in {warm:.1f} s")
    print(f"- replay: {report['seconds']:.1f} s wall, {cpu:.1f} s CPU (this process; "
          f"the database server's CPU not included), {report['calls_per_second']:,} calls/s "
          f"wall, {calls / cpu if cpu else 0:,.0f} calls per CPU second; peak RSS {rss_mb:.0f} MB")
    by = report["by_change"]
    print(f"- verdicts changed: {report['changed']:,} (newly blocked {by['newly_blocked']:,}, "
          f"newly allowed {by['newly_allowed']:,}); unchanged {report['unchanged']}")
    for c in report["changes"][:8]:
        print(f"  - {c['change']} {c['rule'] or '-'} / {c['reason']}: {c['count']:,}")
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
