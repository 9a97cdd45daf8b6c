"""Max calls/s of the two-PBX cluster topology against the same two PBXes unscreened.

    sudo .venv/bin/python -m bench.two_pbx              # ~6-10 min on 2 shared cores
    sudo .venv/bin/python -m bench.two_pbx --quick      # ~2 min smoke run

Everything on 127.0.0.1, started here and stopped by pid at the end (also on errors,
Ctrl-C and SIGTERM): one PostgreSQL and one redis-server (``outguard.testing.servers``,
ports 14000/17000 + offset + 80), two sandbox Asterisk instances (the integration tests'
pair: the second at offset + 50, ``outguard.testing.pbxes``), and, around each screened
step, two outguard processes (``bench.outguard_proc``, ARI continue mode + AMI, one per
PBX) sharing that PostgreSQL store and that Redis. Each step offers one total rate, half
to each PBX at once: a SIPp agent and a SIPp carrier per PBX, as in ``bench/e2e.py``.

Variants (interleaved per rate, their order rotated each repetition):

    direct   both PBXes unscreened (endpoint agent-direct: straight to Dial())
    cluster  both PBXes screened (endpoint agent: Stasis(outguard), continue mode); the
             caps reserved in the shared Redis, the call log in the shared PostgreSQL

A step passes with < 1% failed calls, >= 90% of the rate offered and post-dial delay p99
<= 500 ms (``bench.two_pbx_report.step_verdict``); a variant leaves the search at its
first failed step. Per step: failed calls (SIPp's per-call logs), post-dial delay (one
``dumpcap`` capture of both agents' legs), CPU seconds of each Asterisk, each outguard,
redis-server, the PostgreSQL processes (postmaster and backends) from /proc and of the
SIPp processes (``wait4``), machine busy and steal, Redis scripts served. Every step is
bounded in calls and seconds, and the whole search by ``--budget-minutes``. Prints the
Markdown section for bench/RESULTS.md; the raw figures go to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from bench import procs
from bench.procstat import cpu_share, load_average, read_cpu_times
from bench.two_pbx_harness import TwoPbxConfig, run_two_pbx
from bench.two_pbx_report import render

logger = logging.getLogger("bench.two_pbx")

REPO = Path(__file__).resolve().parents[1]


def git_head() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = TwoPbxConfig()
    ap = argparse.ArgumentParser(prog="python -m bench.two_pbx", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: one repetition, rates 20,40,60, 3 s steps, no "
                         "moderate step, 10k listed numbers")
    ap.add_argument("--reps", type=int, help=f"repetitions (default {d.reps})")
    ap.add_argument("--rates", help="total calls/s of the search, comma separated (default "
                                    + ",".join(map(str, d.rates)) + ")")
    ap.add_argument("--step-seconds", type=float, help=f"seconds of calls a step "
                                                       f"(default {d.step_seconds:g})")
    ap.add_argument("--variants", default=",".join(d.variants),
                    help="variants, comma separated: direct, cluster, cluster-unbatched, "
                         "embedded (default "
                         "direct,cluster)")
    ap.add_argument("--moderate-calls", type=int,
                    help=f"calls of the moderate step per variant and repetition, at "
                         f"{d.moderate_rate:g} calls/s (0: none; default {d.moderate_calls})")
    ap.add_argument("--list-numbers", type=int,
                    help=f"listed numbers in the shared store (default {d.list_numbers})")
    ap.add_argument("--redis-timeout-ms", type=float, default=d.redis_timeout_ms,
                    help="[cluster] timeout_ms of both instances (default the product's, "
                         f"{d.redis_timeout_ms:g})")
    ap.add_argument("--budget-minutes", type=float, default=d.budget_minutes,
                    help="start no step after this many minutes of steps (default "
                         f"{d.budget_minutes:g})")
    ap.add_argument("--instance", default=os.environ.get("OUTGUARD_TEST_INSTANCE", d.name),
                    help="sandbox instance name; the second PBX is NAME-b (default "
                         f"$OUTGUARD_TEST_INSTANCE or {d.name})")
    ap.add_argument("--offset", type=int,
                    default=int(os.environ.get("OUTGUARD_TEST_OFFSET", str(d.offset))),
                    help=f"port offset (default $OUTGUARD_TEST_OFFSET or {d.offset})")
    ap.add_argument("--work", type=Path, default=d.work, help=f"work directory ({d.work})")
    ap.add_argument("--out", type=Path, default=Path("/tmp/outguard-two-pbx.json"),
                    help="raw results (JSON; default /tmp/outguard-two-pbx.json)")
    ap.add_argument("--diagnose", action="store_true",
                    help="outguard times its REST requests, its decision and the Redis "
                         "reservation; the report adds their percentiles")
    ap.add_argument("--report-only", action="store_true",
                    help="only print the Markdown section from --out")
    return ap.parse_args(argv)


def config_from(args: argparse.Namespace) -> TwoPbxConfig:
    cfg = TwoPbxConfig(name=args.instance, offset=args.offset, work=args.work,
                       variants=tuple(v.strip() for v in args.variants.split(",") if v.strip()),
                       redis_timeout_ms=args.redis_timeout_ms,
                       budget_minutes=args.budget_minutes, diagnose=args.diagnose)
    if args.quick:
        cfg.reps, cfg.rates, cfg.step_seconds = 1, (20, 40, 60), 3.0
        cfg.moderate_calls, cfg.list_numbers, cfg.callees = 0, 10_000, 2_000
    if args.reps:
        cfg.reps = args.reps
    if args.rates:
        cfg.rates = tuple(int(r) for r in args.rates.split(","))
    if args.step_seconds:
        cfg.step_seconds = args.step_seconds
    if args.moderate_calls is not None:
        cfg.moderate_calls = args.moderate_calls
    if args.list_numbers:
        cfg.list_numbers = args.list_numbers
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not args.report_only:
        procs.install_cleanup()
        cfg = config_from(args)
        started = time.time()
        cpu0 = read_cpu_times()
        load0 = load_average()
        try:
            out = run_two_pbx(cfg)
        except KeyboardInterrupt:
            logger.warning("interrupted: no results written")
            return 130
        share = cpu_share(cpu0, read_cpu_times())
        out["info"] = {
            "argv": shlex.join(["sudo", ".venv/bin/python", "-m", "bench.two_pbx",
                                *(argv if argv is not None else sys.argv[1:])]),
            "git": git_head(), "cpus": os.cpu_count(),
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "minutes": round((time.time() - started) / 60, 1),
            "load_start": load0, "load_end": load_average(),
            "busy": share.busy, "steal": share.steal,
            "cut_by_budget": out.get("cut_by_budget", False),
        }
        args.out.write_text(json.dumps(out, indent=1), encoding="utf-8")
        logger.info("raw results in %s", args.out)
    print(render(json.loads(args.out.read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
