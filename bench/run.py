"""Run every outguard benchmark and write bench/RESULTS.md.

    sudo .venv/bin/python -m bench.run            # full run (~40-60 min)
    sudo .venv/bin/python -m bench.run --quick    # smoke version (~5 min)

1. engine: ``bench/engine.py`` (decide() latency and memory, snapshot build)
2. store: ``bench/store.py`` (list import, call-log writes)
3. end to end on the sandbox Asterisk: ``bench/e2e.py`` (max CPS, post-dial delay, CPU per
   call of Asterisk, outguard and SIPp, outguard's own handling latency, memory over time),
   five variants interleaved, as ratios to the unscreened baseline.

The code under test is copied to ``<work>/src`` first and everything runs from that copy,
so edits made in the working tree during a run do not mix into it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COPIED = ("outguard", "rules", "ari_app", "agi", "bench", "dialplan", "tests/sipp",
          "pyproject.toml", "README.md")
SNAPSHOT_ENV = "OUTGUARD_BENCH_SNAPSHOT"

logger = logging.getLogger("bench.run")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="short smoke version: small sizes, one repetition, short steps")
    ap.add_argument("--reps", type=int, help="end-to-end repetitions (default 3; quick 1)")
    ap.add_argument("--engine-numbers", type=int,
                    help="listed numbers for the engine benchmark (default 10M; quick 200k)")
    ap.add_argument("--store-numbers", type=int,
                    help="lines for the store import benchmark (default 10M; quick 200k)")
    ap.add_argument("--store-calls", type=int,
                    help="call-log rows for the store benchmark (default 1M; quick 50k)")
    ap.add_argument("--list-numbers", type=int,
                    help="numbers on outguard's and AstDB's blacklist end to end "
                         "(default 1M; quick 20k)")
    ap.add_argument("--memory-minutes", type=float,
                    help="length of the memory run at the moderate rate (default 10; quick 0.5)")
    ap.add_argument("--variants", default="direct,native,agi,ari,bridge",
                    help="end-to-end variants, comma separated")
    ap.add_argument("--rates", help="stepped search rates, comma separated (calls/s)")
    ap.add_argument("--step-seconds", type=float, help="seconds of calls per step (default 5)")
    ap.add_argument("--skip", default="", help="parts to skip: engine,store,e2e")
    ap.add_argument("--uvloop", action="store_true",
                    help="experiment: run the outguard processes on uvloop (installed apart)")
    ap.add_argument("--instance", default=os.environ.get("OUTGUARD_TEST_INSTANCE", "bench"),
                    help="sandbox instance name (default $OUTGUARD_TEST_INSTANCE or bench)")
    ap.add_argument("--offset", type=int,
                    default=int(os.environ.get("OUTGUARD_TEST_OFFSET", "600")),
                    help="sandbox port offset (default $OUTGUARD_TEST_OFFSET or 600)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/outguard-bench"),
                    help="work directory (default /tmp/outguard-bench)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md",
                    help="where to write the report (default bench/RESULTS.md)")
    ap.add_argument("--report-only", action="store_true",
                    help="only rewrite the report from the results.json next to --out")
    ap.add_argument("--in-place", action="store_true",
                    help="run the working tree itself instead of a copy")
    return ap.parse_args(argv)


def snapshot_tree(dest: Path) -> Path:
    """Copy the code under test (not .git, not .venv) to ``dest``."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "RESULTS.md", "*.egg-info")
    for rel in COPIED:
        src = REPO / rel
        if src.is_dir():
            shutil.copytree(src, dest / rel, ignore=ignore)
        elif src.exists():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def git_state() -> dict[str, str]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                                  text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    dirty = [line[3:] for line in git("status", "--short").splitlines()
             if line[3:].split("/")[0] in {"outguard", "rules", "ari_app", "agi"}]
    return {"head": git("rev-parse", "--short", "HEAD"),
            "subject": git("log", "-1", "--format=%s"),
            "dirty": ", ".join(dirty[:40]) + (" ..." if len(dirty) > 40 else "")}


def run_script(cmd: list[str], cwd: Path, timeout_s: float) -> dict[str, Any]:
    started = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s,
                              start_new_session=True)
        out, code = done.stdout + (done.stderr[-3000:] if done.returncode else ""), done.returncode
    except subprocess.TimeoutExpired as err:
        out = (err.stdout or b"").decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        out, code = out + f"\n(killed after {timeout_s:.0f} s)", -9
    return {"command": cmd, "output": out.strip(), "returncode": code,
            "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.report_only:
        from bench.report import write_report

        results = json.loads(args.out.with_name("results.json").read_text(encoding="utf-8"))
        write_report(results, args.out)
        logger.info("wrote %s", args.out)
        return 0
    if not args.in_place and os.environ.get(SNAPSHOT_ENV) != "1":
        src = snapshot_tree(args.work.with_name(args.work.name + "-src"))
        logger.info("running a copy of the code under test from %s", src)
        env = dict(os.environ, **{SNAPSHOT_ENV: "1", "PYTHONPATH": str(src),
                                  "OUTGUARD_BENCH_GIT": json.dumps(git_state()),
                                  "OUTGUARD_BENCH_ARGV": shlex.join(
                                      [sys.executable, "-m", "bench.run", *sys.argv[1:]])})
        # the copy runs in its own directory: a relative --out names a file here
        argv_out = list(argv if argv is not None else sys.argv[1:])
        argv_out = strip_option(argv_out, "--out") + ["--out", str(args.out.resolve())]
        return run_child([sys.executable, "-m", "bench.run", *argv_out], cwd=src, env=env)
    return run_all(args)


def strip_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` and ``name=VALUE``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out


def run_child(cmd: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Run the copy and wait for it; on Ctrl-C or SIGTERM pass SIGINT on and give it two
    minutes to clean up (it kills its SIPp, dumpcap and outguard processes and stops the
    sandbox), then SIGKILL."""
    child = subprocess.Popen(cmd, cwd=cwd, env=env)
    asked: list[float] = []

    def forward(signum: int, frame: object) -> None:
        asked.append(time.monotonic())
        if child.poll() is None:
            child.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        try:
            return child.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            if asked and time.monotonic() - asked[0] > 120:
                child.kill()


def run_all(args: argparse.Namespace) -> int:
    from bench import procs
    from bench.e2e import E2EConfig, run_e2e
    from bench.procstat import cpu_share, read_cpu_times
    from bench.report import machine_info, write_report

    procs.install_cleanup()
    here = Path(__file__).resolve().parents[1]
    import outguard

    logger.info("outguard imported from %s", Path(outguard.__file__).parent)
    quick = args.quick
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    py = sys.executable
    engine_n = args.engine_numbers or (200_000 if quick else 10_000_000)
    store_n = args.store_numbers or (200_000 if quick else 10_000_000)
    store_calls = args.store_calls or (50_000 if quick else 1_000_000)
    started = time.time()
    cpu0 = read_cpu_times()
    info: dict[str, Any] = {
        "machine": machine_info(),
        "git": json.loads(os.environ.get("OUTGUARD_BENCH_GIT", "{}") or "{}"),
        "argv": os.environ.get("OUTGUARD_BENCH_ARGV") or shlex.join(sys.argv),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)),
        "quick": quick,
    }
    results: dict[str, Any] = {"info": info}
    raw = args.out.with_name("results.json")

    def save() -> None:  # after every part, so an interrupted run keeps what it measured
        raw.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")

    if "engine" not in skip:
        cmd = [py, "bench/engine.py", "--numbers", str(engine_n),
               "--prefixes", "10000" if quick else "100000",
               "--accounts", "1000" if quick else "10000"]
        logger.info("engine benchmark: %s", shlex.join(cmd))
        results["engine"] = run_script(cmd, here, 1800)
        logger.info("engine benchmark done in %.0f s", results["engine"]["seconds"])
        save()
    if "store" not in skip:
        cmd = [py, "bench/store.py", "--numbers", str(store_n), "--calls", str(store_calls),
               "--dir", str(args.work.with_name(args.work.name + "-store"))]
        logger.info("store benchmark: %s", shlex.join(cmd))
        results["store"] = run_script(cmd, here, 1800)
        shutil.rmtree(args.work.with_name(args.work.name + "-store"), ignore_errors=True)
        logger.info("store benchmark done in %.0f s", results["store"]["seconds"])
        save()
    if "e2e" not in skip:
        cfg = E2EConfig(work=args.work, variants=tuple(args.variants.split(",")),
                        name=args.instance, offset=args.offset, uvloop=args.uvloop)
        if quick:
            cfg.reps, cfg.rates, cfg.step_seconds = 1, (60, 120), 3.0
            cfg.list_numbers, cfg.callees, cfg.moderate_calls = 20_000, 5_000, 100
            cfg.memory_minutes = 0.5
        if args.reps:
            cfg.reps = args.reps
        if args.list_numbers:
            cfg.list_numbers = args.list_numbers
        if args.memory_minutes is not None:
            cfg.memory_minutes = args.memory_minutes
        if args.rates:
            cfg.rates = tuple(int(r) for r in args.rates.split(","))
        if args.step_seconds:
            cfg.step_seconds = args.step_seconds
        try:
            results["e2e"] = run_e2e(cfg)
        except KeyboardInterrupt:
            logger.warning("interrupted: no report written")
            return 130
    info["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    info["minutes"] = round((time.time() - started) / 60, 1)
    share = cpu_share(cpu0, read_cpu_times())
    info["run_cpu"] = {"busy": share.busy, "steal": share.steal, "idle": share.idle}
    save()
    write_report(results, args.out)
    logger.info("wrote %s and %s", args.out, raw)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
