"""Memory soak: the screener in process, fed calls by a fake adapter, on a fake clock.

    .venv/bin/python -m bench.soak                 # 400,000 calls over 10 simulated days
    .venv/bin/python -m bench.soak --calls 50000 --seconds-per-call 20   # quicker

Every call goes to a new callee (the worst case for per-destination counters) from one of
2,000 seats, is decided by ``Screener.screen`` with the demo policy on a real SQLite store
(call log and its writer included), and ends at once (``Screener.ended``). The clock moves
``--seconds-per-call`` per call, so the run spans more than the counters' 8-day retention:
after that warm-up, what the process holds should stop growing. RSS (``/proc/self/status``)
is sampled every ``--sample-every`` calls after a ``gc.collect()``; the result is the RSS at
the end of the warm-up, at the end, and the growth per 100,000 calls in between (least
squares over the samples). Bounded in calls and in wall time (``--max-seconds``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from outguard.callfacts import ChannelFacts
from outguard.service import REPLAY_S, Screener
from outguard.store.aio import AsyncStore
from outguard.store.sqlite import SQLiteStore
from rules.policy import default_policy

SEATS = 2000
START = 1_800_000_000.0


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def slope(points: list[tuple[int, int]]) -> float:
    """Least-squares growth of RSS (KiB) per call."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


async def soak(calls: int, seconds_per_call: float, sample_every: int,
               max_seconds: float) -> dict[str, Any]:
    now = [START]
    with tempfile.TemporaryDirectory(prefix="outguard-soak-") as tmp:
        with SQLiteStore(Path(tmp) / "soak.db") as seed:
            seed.create_tenant("t1", "Soak")
            seed.upsert_caller_id("01088886666", "t1", verification="verified",
                                  verified_until=datetime.fromtimestamp(START + 400 * 86400, UTC))
            for seat in range(SEATS):
                seed.create_account(f"seat-{seat}", "t1")
        store = AsyncStore(SQLiteStore(Path(tmp) / "soak.db"))
        screener = Screener(store, default_policy(), clock=lambda: now[0],
                            refresh_every_s=1e12)
        await screener.rebuild()
        warmup_calls = int(REPLAY_S / seconds_per_call) + sample_every
        samples: list[tuple[int, int]] = []
        allowed = 0
        began = time.monotonic()
        done = 0
        for i in range(calls):
            now[0] = START + i * seconds_per_call
            facts = ChannelFacts(
                adapter="agi", channel_id=f"soak-{i}", channel_name=f"PJSIP/seat{i % SEATS}-1",
                dialed=f"139{i:08d}", caller_id="01088886666", account=f"seat-{i % SEATS}",
                tenant="t1", purpose="service")
            decision = screener.screen(facts)
            if decision.allowed:
                allowed += 1
                screener.answered(decision.id, now[0])
                screener.ended(decision.id, 16, now[0] + 1)
            done = i + 1
            if done % sample_every == 0:
                await store.flush_async()
                await asyncio.sleep(0)
                gc.collect()
                samples.append((done, rss_kib()))
                if time.monotonic() - began > max_seconds:
                    break
        await store.flush_async()
        sizes = screener.counters.sizes()
        reasons = dict(screener.stats.by_reason)
        await store.aclose()
    after = [(x, y) for x, y in samples if x >= warmup_calls]
    return {
        "calls": done, "allowed": allowed, "seconds_per_call": seconds_per_call,
        "simulated_days": round(done * seconds_per_call / 86400, 2),
        "wall_s": round(time.monotonic() - began, 1),
        "warmup_calls": warmup_calls,
        "rss_kib_at_warmup_end": after[0][1] if after else None,
        "rss_kib_at_end": samples[-1][1] if samples else None,
        "rss_kib_max": max(y for _, y in samples) if samples else None,
        "growth_kib_per_100k_calls_after_warmup": round(slope(after) * 100_000, 1),
        "counters": sizes, "verdicts": reasons, "samples": samples,
    }


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True, cwd=Path(__file__).parent)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=400_000)
    ap.add_argument("--seconds-per-call", type=float, default=2.2)
    ap.add_argument("--sample-every", type=int, default=10_000)
    ap.add_argument("--max-seconds", type=float, default=900.0)
    ap.add_argument("--json", action="store_true", help="print the samples too")
    args = ap.parse_args(argv)
    result = asyncio.run(soak(args.calls, args.seconds_per_call, args.sample_every,
                              args.max_seconds))
    result["commit"] = commit()
    if not args.json:
        result.pop("samples")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
