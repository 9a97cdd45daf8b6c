"""End-to-end benchmark on the sandbox Asterisk: SIPp agent -> PJSIP -> outbound context ->
SIPp carrier, the same load for every variant:

    direct  baseline, no screening           (endpoint agent-direct)
    native  AstDB blacklist in the dialplan  (agent-native, GotoIf(${DB_EXISTS(...)}))
    agi     outguard over FastAGI            (agent-agi)
    ari     outguard ARI, continue mode      (agent)
    bridge  outguard ARI, bridge mode        (agent-bridge)

Every call dials a number that is not listed (the allowed path), the carrier rings,
answers and hangs up after ``hold_ms``. Per step (one variant, one rate, a bounded number
of calls and seconds) it records failed calls, the offered rate, post-dial delay from a
packet capture of the agent's leg (microsecond timestamps), and CPU seconds of Asterisk,
outguard and SIPp from /proc and ``wait4``. Variants are interleaved (rotated each
repetition) and the stepped search climbs rate by rate with every variant still passing,
so all of them see the same stretch of this noisy machine.

Run it through ``bench/run.py``; ``python -m bench.e2e --help`` runs only this part.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procs
from bench.pcap import pdd_from_pcap
from bench.procstat import (
    cpu_share,
    open_fds,
    percentile,
    read_cpu_times,
    read_pid_cpu,
    read_rss_kb,
)
from outguard import sandbox
from outguard.testing import sipp

logger = logging.getLogger("bench.e2e")

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
AGENT_SCENARIO = BENCH / "sipp" / "agent_bench.xml"
CARRIER_SCENARIO = REPO / "tests" / "sipp" / "carrier_answer.xml"
POLICY = BENCH / "policy.toml"
CALLER_ID = "01088886666"
#: listed numbers (outguard's blacklist and the AstDB blacklist) are 139xxxxxxxx,
#: dialed numbers 138xxxxxxxx: never listed, so every variant completes the call
LISTED_BASE = 13_900_000_000
CALLEE_BASE = 13_800_000_000
SCATTER = 2_654_435_761  # odd, not a multiple of 5: i -> i*SCATTER mod 1e8 is one-to-one


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    endpoint: str
    outguard: str | None  # which outguard process serves it: "ari", "agi" or none


VARIANTS: dict[str, Variant] = {v.key: v for v in (
    Variant("direct", "baseline (agent-direct, no screening)", "agent-direct", None),
    Variant("native", "native AstDB blacklist (agent-native)", "agent-native", None),
    Variant("agi", "outguard FastAGI (agent-agi)", "agent-agi", "agi"),
    Variant("ari", "outguard ARI continue (agent)", "agent", "ari"),
    Variant("bridge", "outguard ARI bridge (agent-bridge)", "agent-bridge", "ari"),
    # continue mode with no AMI session: the call's end is followed by subscribing to
    # the channel (two requests and four events per call instead of one request, two
    # events and the hangup handler's UserEvent over AMI)
    Variant("ari-sub", "outguard ARI continue, no AMI session (agent)", "agent", "ari-sub"),
)}


@dataclass
class E2EConfig:
    name: str = "bench"
    offset: int = 600
    variants: tuple[str, ...] = ("direct", "native", "agi", "ari", "bridge")
    reps: int = 3
    rates: tuple[int, ...] = (80, 110, 140, 170, 200, 230, 260, 300, 340, 380, 430, 480,
                              540, 600)
    step_seconds: float = 5.0
    step_max_calls: int = 3000
    moderate_rate: float = 20.0
    moderate_calls: int = 400
    hold_ms: int = 200
    list_numbers: int = 1_000_000
    callees: int = 50_000
    memory_minutes: float = 10.0
    memory_rate: float = 20.0
    memory_callees: int = 2_000
    drain_timeout_s: float = 120.0
    fd_margin: int = 40
    capture: bool = True
    agi_per_step: bool = True  # start the FastAGI+AMI outguard only around agi steps
    #: the same for the ARI+AMI outguard: no outguard AMI session is connected during the
    #: other variants' steps (an AMI session makes Asterisk format every event once)
    ari_per_step: bool = True
    uvloop: bool = False  # experiment: the outguard processes on uvloop
    rtp_range: tuple[int, int] = (26000, 29999)
    work: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "outguard-bench")


# ---------------------------------------------------------------- data preparation


def listed_numbers(n: int) -> Iterator[str]:
    for i in range(n):
        yield str(LISTED_BASE + (i * SCATTER) % 100_000_000)


def callee_numbers(n: int) -> Iterator[str]:
    for i in range(n):
        yield str(CALLEE_BASE + (i * SCATTER) % 100_000_000)


def fresh_work(work: Path, list_numbers: int, callees: int) -> Path:
    """An emptied work directory with the listed numbers (``listed.txt``, returned) and
    the callees' SIPp injection file (``callees.csv``)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    numbers = work / "listed.txt"
    numbers.write_text("".join(n + "\n" for n in listed_numbers(list_numbers)),
                       encoding="ascii")
    write_injection(work / "callees.csv", callee_numbers(callees))
    return numbers


def write_injection(path: Path, numbers: Iterator[str]) -> Path:
    """A SIPp injection file: one dialed number per call, used in order, then again."""
    with open(path, "w", encoding="ascii") as fh:
        fh.write("SEQUENTIAL\n")
        for n in numbers:
            fh.write(n + ";\n")
    return path


def write_astdb(db: Path, numbers: Iterator[str], family: str = "blacklist") -> int:
    """Bulk-load an AstDB family by writing astdb.sqlite3 while Asterisk is stopped."""
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    try:
        con.execute("CREATE TABLE IF NOT EXISTS astdb(key VARCHAR(256), value VARCHAR(256), "
                    "PRIMARY KEY(key))")
        con.execute("DELETE FROM astdb WHERE key LIKE ?", (f"/{family}/%",))
        cur = con.executemany("INSERT OR REPLACE INTO astdb(key, value) VALUES (?, '1')",
                              ((f"/{family}/{n}",) for n in numbers))
        count = cur.rowcount
        con.commit()
    finally:
        con.close()
    return count


def seed_store(path: Path, numbers_file: Path) -> dict[str, Any]:
    """outguard's store: the blacklist imported from the same numbers as AstDB holds."""
    from outguard.store.sqlite import SQLiteStore

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    with SQLiteStore(str(path)) as store:
        store.create_list("blacklist", "blacklist", description="bench", actor="bench")
        store.create_list("dnc", "dnc", description="bench", actor="bench")
        store.add_entries("dnc", ["+8613700137000"], source="bench", actor="bench")
        result = store.import_list("blacklist", numbers_file, actor="bench")
        store.flush()
    return {"accepted": result.accepted, "rejected": result.rejected,
            "seconds": round(time.perf_counter() - started, 1)}


def settings_toml(inst: sandbox.Instance, store: Path, api_port: int) -> str:
    p = inst.ports
    return "\n".join([
        "# written by bench/e2e.py",
        f'store = "{store}"',
        f'policy = "{POLICY}"',
        'default_tenant = "bench"',
        "[ari]",
        f'url = "{inst.ari_url}"',
        f'user = "{inst.ari_user}"',
        f'app = "{inst.app}"',
        'password_env = "OUTGUARD_ARI_PASSWORD"',
        "[agi]",
        'host = "127.0.0.1"',
        f"port = {p.agi}",
        "[ami]",
        'host = "127.0.0.1"',
        f"port = {p.ami}",
        f'user = "{inst.ami_user}"',
        'password_env = "OUTGUARD_AMI_PASSWORD"',
        "[api]",
        'host = "127.0.0.1"',
        f"port = {api_port}",
        "",
    ])


# ---------------------------------------------------------------- outguard process


class Outguard:
    """``bench.outguard_proc`` (outguard serve + a latency dump) with some parts."""

    def __init__(self, name: str, settings: Path, parts: str, work: Path,
                 inst: sandbox.Instance, extra: tuple[str, ...] = ()) -> None:
        self.name = name
        self.extra = extra
        self.settings = settings
        self.parts = parts
        self.dump_file = work / f"outguard-{name}-latency.json"
        self.log = work / f"outguard-{name}.log"
        self.env = dict(os.environ, OUTGUARD_ARI_PASSWORD=inst.ari_password,
                        OUTGUARD_AMI_PASSWORD=inst.ami_password)
        self.proc: subprocess.Popen[bytes] | None = None
        self.seq = 0
        self.started_s: float | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    def start(self, timeout_s: float = 180.0) -> float:
        self.dump_file.unlink(missing_ok=True)
        self.seq = 0
        began = time.monotonic()
        args = [sys.executable, "-m", "bench.outguard_proc", "-c", str(self.settings),
                "--parts", self.parts, "--dump", str(self.dump_file), *self.extra]
        with open(self.log, "ab") as log:
            log.write(f"\n$ {' '.join(args)}\n".encode())
        # READY on stdout; warnings and errors (stderr) into the log
        self.proc = procs.spawn(args, cwd=REPO, env=self.env, pipe_stdout=True,
                                stdout=self.log)
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        buffer = b""
        while time.monotonic() - began < timeout_s:
            if procs.reap(self.proc, block=False) is not None:
                raise RuntimeError(f"outguard {self.name} exited while starting: "
                                   f"{buffer.decode(errors='replace')[-500:]}")
            try:
                chunk = self.proc.stdout.read()
            except BlockingIOError:
                chunk = None
            if chunk:
                buffer += chunk
                if b"READY" in buffer:
                    self.started_s = time.monotonic() - began
                    self.seq = self._read_seq()
                    return self.started_s
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"outguard {self.name} not ready within {timeout_s:.0f} s")

    def _read_seq(self) -> int:
        try:
            return int(json.loads(self.dump_file.read_text(encoding="utf-8"))["seq"])
        except (OSError, ValueError, KeyError):
            return 0

    def dump(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """The latencies collected since the previous dump (and start a new collection)."""
        if self.pid is None:
            return {}
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                body = json.loads(self.dump_file.read_text(encoding="utf-8"))
                if int(body["seq"]) > self.seq:
                    self.seq = int(body["seq"])
                    return dict(body)
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.02)
        logger.warning("outguard %s: no latency dump within %.0f s", self.name, timeout_s)
        return {}

    def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            procs.kill(self.proc, signal.SIGTERM, grace_s=15)
        self.proc = None


# ---------------------------------------------------------------- the bench


@contextmanager
def wide_rtp_range(low: int, high: int) -> Iterator[None]:
    """Render the bench instance's rtp.conf with a wider port range than the template's
    1000 ports, so the lingering RTP sockets of an overloaded step do not starve the next.
    Applies to every variant alike."""
    original = sandbox.write_config

    def write(root: Path, inst: sandbox.Instance) -> Path:
        etc = original(root, inst)
        (etc / "rtp.conf").write_text(
            f"; bench: widened by bench/e2e.py\n[general]\nrtpstart = {low}\nrtpend = {high}\n",
            encoding="utf-8")
        return etc

    sandbox.write_config = write  # type: ignore[assignment]
    try:
        yield
    finally:
        sandbox.write_config = original  # type: ignore[assignment]


@dataclass
class Step:
    variant: str
    phase: str  # "warmup", "moderate", "search", "memory"
    rep: int
    rate: float
    calls: int
    completed: int = 0
    failed: int = 0
    finals: dict[str, int] = field(default_factory=dict)
    offered_cps: float | None = None
    seconds: float = 0.0
    asterisk_cpu_s: float = 0.0
    outguard_cpu_s: float = 0.0
    sipp_cpu_s: float = 0.0
    steal: float = 0.0
    busy: float = 0.0
    pdd_ms: list[float] = field(default_factory=list)
    pdd_source: str = "pcap"
    stasis_ms: list[float] = field(default_factory=list)
    agi_ms: list[float] = field(default_factory=list)
    requests_ms: dict[str, list[float]] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    drain_s: float = 0.0
    leaked_channels: int = 0  # channels still up 15 s after the last call (then hung up)
    timed_out: bool = False
    passed: bool = False

    def absorb(self, body: dict[str, Any]) -> None:
        """Add one latency dump of outguard_proc."""
        self.stasis_ms += [x * 1000 for x in body.get("stasis_s", [])]
        self.agi_ms += [x * 1000 for x in body.get("agi_s", [])]
        for kind, xs in body.get("requests_ms", {}).items():
            self.requests_ms.setdefault(kind, []).extend(xs)
        for kind, n in body.get("events", {}).items():
            self.events[kind] = self.events.get(kind, 0) + n

    def per_call_ms(self, what: str) -> float | None:
        if not self.completed:
            return None
        return getattr(self, f"{what}_cpu_s") / self.completed * 1000

    def summary(self) -> str:
        pdd = self.pdd_ms
        return (f"{self.phase:8} rep {self.rep} {self.variant:6} {self.rate:5.0f} cps "
                f"x{self.calls}: {'PASS' if self.passed else 'FAIL'} failed {self.failed} "
                f"offered {self.offered_cps or 0:.1f} cps, "
                f"pdd p50/p99 {percentile(pdd, 50) or 0:.2f}/{percentile(pdd, 99) or 0:.2f} ms, "
                f"cpu/call ast {self.per_call_ms('asterisk') or 0:.2f} og "
                f"{self.per_call_ms('outguard') or 0:.2f} sipp {self.per_call_ms('sipp') or 0:.2f}"
                f" ms, steal {self.steal:.0%}, busy {self.busy:.0%}"
                + (f", drained {self.drain_s:.0f} s" if self.drain_s >= 1 else "")
                + (f", LEAKED {self.leaked_channels} channels" if self.leaked_channels else ""))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def carrier_args(port: int, hold_ms: int, limit_s: float, media_shift: int = 2000,
                 control_shift: int = 1000) -> list[str]:
    """The SIPp carrier (UAS) at ``port``: rings, answers, hangs up after ``hold_ms``."""
    return [sipp.sipp_binary(), "-sf", str(CARRIER_SCENARIO), "-i", "127.0.0.1",
            "-mi", "127.0.0.1", "-p", str(port), "-mp", str(port + media_shift),
            "-cp", str(port + control_shift), "-nostdin", "-d", str(hold_ms),
            "-timeout", f"{int(limit_s)}s"]


def agent_args(port: int, pbx_sip: int, endpoint: str, callees: Path, calls: int,
               rate: float, limit_s: float, log: Path, media_shift: int = 2000,
               control_shift: int = 1000) -> list[str]:
    """The SIPp agent (UAC) at ``port``: ``calls`` calls at ``rate`` to the PBX's SIP port
    as ``endpoint``, dialed numbers from ``callees``, every call logged to ``log``."""
    return [sipp.sipp_binary(), "-sf", str(AGENT_SCENARIO), "-i", "127.0.0.1",
            "-mi", "127.0.0.1", "-p", str(port), "-mp", str(port + media_shift),
            "-cp", str(port + control_shift), "-nostdin", "-trace_logs", "-log_file", str(log),
            f"127.0.0.1:{pbx_sip}", "-inf", str(callees),
            "-m", str(calls), "-r", f"{rate:g}", "-l", str(max(30, int(rate * 3))),
            "-timeout", f"{int(limit_s)}s",
            "-key", "from_user", endpoint, "-key", "account", "", "-key", "tenant", "",
            "-key", "fail_mode", "", "-key", "purpose", "", "-key", "caller_id", CALLER_ID,
            "-d", "0"]


def start_capture(pcap_file: Path, ports: list[int], cwd: Path) -> subprocess.Popen[bytes]:
    """``dumpcap`` of the SIP packets to and from ``ports`` on lo, once it writes."""
    dumpcap = procs.spawn(
        ["dumpcap", "-i", "lo", "-P", "-q", "-B", "32", "-f",
         " or ".join(f"udp port {port}" for port in ports), "-w", str(pcap_file)],
        cwd=cwd, stdout=cwd / "dumpcap.out")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
            not pcap_file.exists() or pcap_file.stat().st_size < 24):
        time.sleep(0.05)
    return dumpcap


@dataclass
class CallFigures:
    """What one SIPp agent's calls came to: completed calls (answered, ended by the far
    end), final statuses, post-dial delays and the offered rate."""

    completed: int
    finals: dict[str, int]
    pdd_ms: list[float]
    pdd_source: str
    offered_cps: float | None


def call_figures(log: Path, pcap_file: Path | None, agent_port: int) -> CallFigures:
    """The figures of the agent at ``agent_port``: from its SIPp log, and post-dial delay
    and offered rate from the capture when there is one (else SIPp's ~4 ms ticks)."""
    seen = sipp.parse_agent_log(log)
    finals: dict[str, int] = {}
    for c in seen.values():
        k = str(c.final) if c.final is not None else "none"
        finals[k] = finals.get(k, 0) + 1
    pdd_ms: list[float] = []
    offered: float | None = None
    source = "pcap"
    if pcap_file is not None and pcap_file.exists():
        report = pdd_from_pcap(pcap_file, agent_port)
        pdd_ms = [d * 1000 for d in report.delays]
        offered = report.offered_rate()
    if not pdd_ms:
        source = "sipp"
        pdd_ms = [float(c.post_dial_delay_ms) for c in seen.values()
                  if c.post_dial_delay_ms is not None]
    sent = sorted(c.sent_ms for c in seen.values() if c.sent_ms is not None)
    if offered is None and len(sent) > 1 and sent[-1] > sent[0]:
        offered = (len(sent) - 1) / ((sent[-1] - sent[0]) / 1000)
    completed = sum(1 for c in seen.values() if c.final == 200 and c.ended_by == "remote")
    return CallFigures(completed, finals, pdd_ms, source, offered)


def wait_drained(box: sandbox.Sandbox, fd_limit: int, deadline: float) -> None:
    """Until the Asterisk of ``box`` has at most ``fd_limit`` open files (RTP sockets of
    an overload linger 30-60 s after the channels are gone) and no channel, or the
    monotonic ``deadline``; then its agent and carrier ports free."""
    pid = box.pid()
    while time.monotonic() < deadline:
        fds = open_fds(pid) if pid else None
        if fds is None or fds <= fd_limit:
            try:
                if box.channels() == 0:
                    break
            except (sandbox.SandboxError, subprocess.TimeoutExpired):
                pass
        time.sleep(1.0)
    else:
        logger.warning("%s did not drain in time (fds %s, limit %d)", box.inst.name,
                       open_fds(pid) if pid else "?", fd_limit)
    for port in (box.inst.ports.agent, box.inst.ports.carrier):
        sipp.wait_port_free(port, timeout=10)


def reap_leftovers(box: sandbox.Sandbox, wait_s: float = 15.0) -> int:
    """Channels still up after every SIPp call has ended are leaks (e.g. a caller left
    answered in Stasis): count them, then hang them up so the next step starts clean."""
    deadline = time.monotonic() + wait_s
    left = 0
    while time.monotonic() < deadline:
        try:
            left = box.channels()
        except (sandbox.SandboxError, subprocess.TimeoutExpired):
            left = -1
        if left == 0:
            return 0
        time.sleep(1.0)
    logger.warning("%s: %d channel(s) still up %.0f s after the step: hanging them up",
                   box.inst.name, left, wait_s)
    try:
        box.hangup_all(timeout=30)
    except (sandbox.SandboxError, subprocess.TimeoutExpired) as err:
        logger.warning("hangup all failed: %s", err)
    return left


class Bench:
    def __init__(self, cfg: E2EConfig) -> None:
        self.cfg = cfg
        self.work = cfg.work
        self.box: sandbox.Sandbox | None = None
        self.ari: Outguard | None = None
        self.agi: Outguard | None = None
        self.ari_sub: Outguard | None = None
        self.fd_base = 0
        self.steps: list[Step] = []
        self.setup_info: dict[str, Any] = {}
        self.memory: dict[str, Any] = {}

    # -- set-up and tear-down ---------------------------------------------------------

    def setup(self) -> None:
        cfg = self.cfg
        if os.geteuid() != 0:
            raise SystemExit("the end-to-end benchmark needs root (the sandbox is a chroot)")
        for tool in ("sipp", "dumpcap") if cfg.capture else ("sipp",):
            if shutil.which(tool) is None:
                raise SystemExit(f"{tool} is missing: apt-get install -y "
                                 f"{'sip-tester' if tool == 'sipp' else 'tshark'}")
        t0 = time.perf_counter()
        numbers = fresh_work(self.work, cfg.list_numbers, cfg.callees)
        write_injection(self.work / "callees-memory.csv", callee_numbers(cfg.memory_callees))
        logger.info("seeding outguard's store with %d listed numbers", cfg.list_numbers)
        ari_db = self.work / "ari.db"
        self.setup_info["store"] = seed_store(ari_db, numbers)
        agi_db = self.work / "agi.db"
        shutil.copyfile(ari_db, agi_db)
        sub_db = self.work / "ari-sub.db"
        shutil.copyfile(ari_db, sub_db)
        with wide_rtp_range(*cfg.rtp_range):
            box = self.box = sandbox.up(cfg.name, cfg.offset)
            box.stop()
            astdb = box.root / f"var/lib/asterisk/outguard-{cfg.name}/astdb.sqlite3"
            t1 = time.perf_counter()
            self.setup_info["astdb_keys"] = write_astdb(astdb, listed_numbers(cfg.list_numbers))
            self.setup_info["astdb_s"] = round(time.perf_counter() - t1, 2)
            box.start()
        inst = box.inst
        logger.info("sandbox %s up: SIP %d, ARI %s", cfg.name, inst.ports.sip, inst.ari_url)
        listed = box.cli(f"database get blacklist {next(listed_numbers(1))}")
        if "Value: 1" not in listed:
            raise RuntimeError(f"AstDB bulk load did not take: {listed!r}")
        ari_toml = self.work / "settings-ari.toml"
        ari_toml.write_text(settings_toml(inst, ari_db, 8470 + cfg.offset), encoding="utf-8")
        agi_toml = self.work / "settings-agi.toml"
        agi_toml.write_text(settings_toml(inst, agi_db, 8471 + cfg.offset), encoding="utf-8")
        sub_toml = self.work / "settings-ari-sub.toml"
        sub_toml.write_text(settings_toml(inst, sub_db, 8472 + cfg.offset), encoding="utf-8")
        keys = set(cfg.variants)
        loop = ("--uvloop",) if cfg.uvloop else ()
        if keys & {"ari", "bridge"}:
            # REST round trips and event counts by kind: a dict update per request/event
            # ARI continue mode follows allowed calls to their end over AMI (the hangup
            # handler's one UserEvent per call), so the ARI process runs the AMI listener
            self.ari = Outguard("ari", ari_toml, "ari,ami", self.work, inst,
                                extra=("--time-requests", "--count-events", *loop))
            self.setup_info["outguard_ari_start_s"] = round(self.ari.start(), 1)
            if cfg.ari_per_step:
                self.ari.stop()
        if "ari-sub" in keys:  # never up beside the other ARI process (one Stasis app)
            self.ari_sub = Outguard("ari-sub", sub_toml, "ari", self.work, inst,
                                    extra=("--time-requests", "--count-events", *loop))
            self.setup_info["outguard_ari_sub_start_s"] = round(self.ari_sub.start(), 1)
            self.ari_sub.stop()
        if "agi" in keys:
            self.agi = Outguard("agi", agi_toml, "agi,ami", self.work, inst,
                                extra=("--uvloop",) if cfg.uvloop else ())
            self.setup_info["outguard_agi_start_s"] = round(self.agi.start(), 1)
            if cfg.agi_per_step:
                self.agi.stop()
        self.setup_info["setup_s"] = round(time.perf_counter() - t0, 1)
        self.sanity()

    def teardown(self) -> None:
        for og in (self.ari, self.agi, self.ari_sub):
            if og is not None:
                try:
                    og.stop()
                except Exception:  # noqa: BLE001
                    logger.exception("stopping outguard %s", og.name)
        procs.kill_all()
        if self.box is not None:
            try:
                self.box.stop()
            except Exception:  # noqa: BLE001
                logger.exception("stopping the sandbox")

    @contextmanager
    def serving(self, variant: Variant) -> Iterator[list[Outguard]]:
        """The outguard processes alive during a step of ``variant`` (their CPU counts)."""
        started = None
        serving = {"ari": self.ari, "agi": self.agi,
                   "ari-sub": self.ari_sub}.get(variant.outguard or "")
        if serving is not None and serving.pid is None:
            serving.start()
            started = serving
        try:
            yield [serving] if serving is not None and serving.pid is not None else []
        finally:
            per_step = {"agi": self.cfg.agi_per_step, "ari-sub": True}.get(
                variant.outguard or "", self.cfg.ari_per_step)
            if started is not None and per_step:
                started.stop()

    def sanity(self) -> None:
        """One listed and one unlisted call per variant: the wiring is what it claims."""
        assert self.box is not None
        inst = self.box.inst
        listed = next(listed_numbers(1))
        unlisted = next(callee_numbers(1))
        problems = []
        with sipp.Carrier(inst, hold_ms=100, limit_s=120):
            for key in self.cfg.variants:
                v = VARIANTS[key]
                with self.serving(v):
                    for number, want in ((unlisted, 200), (listed, 200 if key == "direct" else 403)):
                        run = sipp.place_calls(inst, number, from_user=v.endpoint,
                                               caller_id=CALLER_ID, timeout_s=15)
                        got = run.only.final if run.calls else None
                        if got != want:
                            problems.append(f"{key} -> {number}: got {got}, want {want}")
        if problems:
            raise RuntimeError("sanity calls failed: " + "; ".join(problems))
        logger.info("sanity calls: every variant allows the unlisted number and (but for "
                    "the baseline) refuses the listed one")

    # -- one step -----------------------------------------------------------------------

    def wait_drained(self) -> float:
        """Until Asterisk's open files fall back near the warm level and no channel is
        left (``wait_drained``); the SIPp ports free."""
        assert self.box is not None
        began = time.monotonic()
        wait_drained(self.box, self.fd_base + self.cfg.fd_margin,
                     began + self.cfg.drain_timeout_s)
        return time.monotonic() - began

    def reap_leftovers(self, wait_s: float = 15.0) -> int:
        assert self.box is not None
        return reap_leftovers(self.box, wait_s)

    def step(self, key: str, phase: str, rep: int, rate: float, calls: int,
             callees: Path | None = None, capture: bool | None = None,
             on_tick: Any = None) -> Step:
        assert self.box is not None
        cfg, inst = self.cfg, self.box.inst
        v = VARIANTS[key]
        capture = cfg.capture if capture is None else capture
        result = Step(key, phase, rep, rate, calls)
        result.drain_s = self.wait_drained()
        here = Path(tempfile.mkdtemp(prefix=f"{key}-{phase}-", dir=self.work))
        p = inst.ports
        ast_pid = self.box.pid()
        assert ast_pid is not None
        call_s = calls / rate
        with self.serving(v) as serving:
            carrier = procs.spawn(carrier_args(p.carrier, cfg.hold_ms, call_s + 60),
                                  cwd=here, stdout=here / "carrier.out")
            pcap_file = here / "agent.pcap"
            dumpcap = start_capture(pcap_file, [p.agent], here) if capture else None
            time.sleep(0.3)
            if carrier.poll() is not None:
                raise RuntimeError(f"carrier SIPp exited at once: "
                                   f"{(here / 'carrier.out').read_text(errors='replace')[-500:]}")
            for og in serving:
                og.dump()  # start a fresh latency collection
            machine0 = read_cpu_times()
            ast0 = read_pid_cpu(ast_pid)
            og0 = {og.name: read_pid_cpu(og.pid) for og in serving if og.pid}
            began = time.monotonic()
            log = here / "agent.log"
            agent = procs.run(
                agent_args(p.agent, p.sip, v.endpoint, callees or self.work / "callees.csv",
                           calls, rate, call_s + 30, log),
                timeout_s=call_s + 45, cwd=here, stdout=here / "agent.out",
                on_tick=(lambda: on_tick(result, serving)) if on_tick else None)
            result.seconds = time.monotonic() - began
            ast1 = read_pid_cpu(ast_pid)
            machine1 = read_cpu_times()
            og1 = {og.name: read_pid_cpu(og.pid) for og in serving if og.pid}
            carrier_done = procs.kill(carrier, grace_s=0)
            if dumpcap is not None:
                procs.kill(dumpcap, signal.SIGINT, grace_s=5)
            for og in serving:
                body = og.dump()
                result.absorb(body)
        result.leaked_channels = self.reap_leftovers()
        if ast0 and ast1:
            result.asterisk_cpu_s = ast1.seconds() - ast0.seconds()
        result.outguard_cpu_s = sum(
            og1[n].seconds() - og0[n].seconds()  # type: ignore[union-attr]
            for n in og1 if og1[n] is not None and og0.get(n) is not None)
        result.sipp_cpu_s = agent.cpu_s + carrier_done.cpu_s
        share = cpu_share(machine0, machine1)
        result.steal, result.busy = share.steal, share.busy
        result.timed_out = agent.timed_out
        seen = call_figures(log, pcap_file if capture else None, p.agent)
        result.completed, result.finals = seen.completed, seen.finals
        result.failed = calls - result.completed
        result.pdd_ms, result.pdd_source = seen.pdd_ms, seen.pdd_source
        result.offered_cps = seen.offered_cps
        result.passed = (result.failed <= 0.01 * calls and not result.timed_out
                         and (result.offered_cps or 0) >= 0.9 * rate)
        if result.passed:
            shutil.rmtree(here, ignore_errors=True)
        self.steps.append(result)
        logger.info("%s", result.summary())
        return result

    # -- the programme ------------------------------------------------------------------

    def calls_for(self, rate: float) -> int:
        return max(20, min(self.cfg.step_max_calls, int(rate * self.cfg.step_seconds)))

    def warm_up(self) -> None:
        """A short step per variant (not reported), then the warm open-file level."""
        assert self.box is not None
        pid = self.box.pid()
        self.fd_base = 100_000  # no draining wait during the warm-up itself
        for key in self.cfg.variants:
            self.step(key, "warmup", 0, 40, 80)
        time.sleep(3)
        self.fd_base = (open_fds(pid) if pid else 0) or 0
        logger.info("warm: Asterisk has %d open files", self.fd_base)

    def order(self, rep: int) -> list[str]:
        keys = list(self.cfg.variants)
        shift = (rep - 1) % len(keys)
        return keys[shift:] + keys[:shift]

    def run_rep(self, rep: int) -> None:
        cfg = self.cfg
        order = self.order(rep)
        logger.info("repetition %d of %d, order %s", rep, cfg.reps, " ".join(order))
        for key in order:
            self.step(key, "moderate", rep, cfg.moderate_rate, cfg.moderate_calls)
        alive = list(order)
        for rate in cfg.rates:
            if not alive:
                break
            for key in list(alive):
                result = self.step(key, "search", rep, rate, self.calls_for(rate))
                if not result.passed:
                    alive.remove(key)
        if alive:
            logger.warning("rep %d: %s passed every step up to %d cps; the search is capped",
                           rep, ", ".join(alive), cfg.rates[-1])

    def memory_run(self, key: str = "ari") -> None:
        """outguard's RSS over a long run at a moderate rate (a bounded callee set, so the
        counters' state stops growing after the first round)."""
        cfg = self.cfg
        og = self.ari if key in ("ari", "bridge") else self.agi
        if og is None or cfg.memory_minutes <= 0:
            return
        samples: list[tuple[float, int]] = []
        t0 = time.monotonic()

        def sample(result: Step | None = None, serving: list[Outguard] | None = None) -> None:
            rss = read_rss_kb(og.pid) if og.pid else None
            if rss is not None:
                samples.append((round(time.monotonic() - t0, 1), rss))
            if result is not None:  # move the latency samples out of the process
                for proc in serving or []:
                    result.absorb(proc.dump())

        sample()
        calls = int(cfg.memory_rate * cfg.memory_minutes * 60)
        result = self.step(key, "memory", 0, cfg.memory_rate, calls,
                           callees=self.work / "callees-memory.csv", capture=False,
                           on_tick=sample)
        sample()
        self.memory = {"variant": key, "rate": cfg.memory_rate, "calls": calls,
                       "completed": result.completed, "minutes": cfg.memory_minutes,
                       "samples": samples}

    def run(self) -> None:
        self.warm_up()
        for rep in range(1, self.cfg.reps + 1):
            self.run_rep(rep)
        if "ari" in self.cfg.variants:
            self.memory_run("ari")

    def results(self) -> dict[str, Any]:
        cfg = dataclasses.asdict(self.cfg)
        cfg["work"] = str(self.cfg.work)
        return {"config": cfg, "setup": self.setup_info,
                "fd_warm": self.fd_base, "steps": [s.to_json() for s in self.steps],
                "memory": self.memory}


def run_e2e(cfg: E2EConfig) -> dict[str, Any]:
    """Set up, run every step, tear down (also on errors and Ctrl-C); the raw results."""
    bench = Bench(cfg)
    try:
        bench.setup()
        bench.run()
    finally:
        bench.teardown()
    return bench.results()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--variants", default="direct,native,agi,ari,bridge")
    ap.add_argument("--rates", default="60,120")
    ap.add_argument("--list-numbers", type=int, default=10_000)
    ap.add_argument("--memory-minutes", type=float, default=0.0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/outguard-bench-e2e.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    procs.install_cleanup()
    cfg = E2EConfig(reps=args.reps, variants=tuple(args.variants.split(",")),
                    rates=tuple(int(r) for r in args.rates.split(",")),
                    list_numbers=args.list_numbers, memory_minutes=args.memory_minutes)
    out = run_e2e(cfg)
    args.out.write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(f"raw results in {args.out}")


if __name__ == "__main__":
    main()
