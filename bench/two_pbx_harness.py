"""The two-PBX benchmark's harness: the servers, the two PBXes and their outguard
instances, one step at both PBXes at once, the stepped search. Run by ``bench/two_pbx.py``
(its docstring says what is measured and how); the pure part is ``bench/two_pbx_report.py``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import procs
from bench.e2e import (
    CALLER_ID,
    POLICY,
    Outguard,
    agent_args,
    call_figures,
    callee_numbers,
    carrier_args,
    fresh_work,
    listed_numbers,
    reap_leftovers,
    start_capture,
    wait_drained,
)
from bench.procstat import (
    cpu_share,
    open_fds,
    read_children_cpu,
    read_cpu_times,
    read_pid_cpu,
    tree_cpu_delta,
)
from bench.two_pbx_report import Limits, Side, Step
from outguard import sandbox
from outguard.testing import sipp
from outguard.testing.pbxes import second_instance
from outguard.testing.servers import PG_BASE_PORT, REDIS_BASE_PORT, PostgresServer, RedisServer

logger = logging.getLogger("bench.two_pbx")

#: variant key -> the agents' endpoint (both PBXes) and whether outguard serves it
ENDPOINTS = {"direct": ("agent-direct", False), "cluster": ("agent", True),
             "embedded": ("agent", True), "cluster-unbatched": ("agent", True)}
SERVERS_SHIFT = 80  # PostgreSQL and Redis at 14000/17000 + offset + 80


@dataclass
class TwoPbxConfig:
    name: str = "bench2"
    offset: int = 700
    variants: tuple[str, ...] = ("direct", "cluster")
    reps: int = 2
    rates: tuple[int, ...] = (20, 40, 60, 80, 100, 130, 160, 200, 250)
    step_seconds: float = 4.0
    step_max_calls: int = 1500
    moderate_rate: float = 20.0
    moderate_calls: int = 160
    hold_ms: int = 200
    list_numbers: int = 100_000
    callees: int = 20_000
    redis_timeout_ms: float = 250.0  # the product's default [cluster] timeout_ms
    budget_minutes: float = 9.0  # the search stops starting steps past this
    drain_timeout_s: float = 90.0
    fd_margin: int = 40
    capture: bool = True
    diagnose: bool = False  # outguard times its REST requests, decision and reservation
    work: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "outguard-two-pbx")


def settings_toml(inst: sandbox.Instance, pbx: str, store_url: str, redis_url: str | None,
                  spool: Path, timeout_ms: float) -> str:
    """One outguard instance: the shared store and Redis, its own PBX (ARI and AMI); with
    no ``redis_url`` an embedded one (its own SQLite store, caps in memory)."""
    p = inst.ports
    cluster = ["[cluster]", f'redis = "{redis_url}"', 'prefix = "bench:"',
               f"timeout_ms = {timeout_ms:g}"] if redis_url else []
    return "\n".join([
        "# written by bench/two_pbx.py",
        f'store = "{store_url}"',
        f'spool_dir = "{spool}"',
        f'policy = "{POLICY}"',
        'default_tenant = "bench"',
        "[[ari]]",
        f'pbx = "{pbx}"',
        f'url = "{inst.ari_url}"',
        f'user = "{inst.ari_user}"',
        f'app = "{inst.app}"',
        'password_env = "OUTGUARD_ARI_PASSWORD"',
        "[[ami]]",
        f'pbx = "{pbx}"',
        'host = "127.0.0.1"',
        f"port = {p.ami}",
        f'user = "{inst.ami_user}"',
        'password_env = "OUTGUARD_AMI_PASSWORD"',
        "[agi]",
        "enabled = false",
        "[api]",
        'host = "127.0.0.1"',
        f"port = {p.http + 1000}",
        *cluster,
        "",
    ])


def seed_store(url: str, numbers_file: Path) -> dict[str, Any]:
    """The shared store (or an embedded instance's own SQLite file): the blacklist the
    instances screen with."""
    from outguard.store.postgres import PostgresStore
    from outguard.store.sqlite import SQLiteStore

    started = time.perf_counter()
    store = PostgresStore(url) if url.startswith("postgresql:") else SQLiteStore(url)
    try:
        store.create_list("blacklist", "blacklist", description="bench", actor="bench")
        store.create_list("dnc", "dnc", description="bench", actor="bench")
        store.add_entries("dnc", ["+8613700137000"], source="bench", actor="bench")
        result = store.import_list("blacklist", numbers_file, actor="bench")
    finally:
        store.close()
    return {"accepted": result.accepted, "seconds": round(time.perf_counter() - started, 1)}


class Pbx:
    """One of the two PBXes: its sandbox, its outguard, its warm open-file level."""

    def __init__(self, key: str, box: sandbox.Sandbox) -> None:
        self.key = key  # "a" or "b"
        self.box = box
        self.outguards: dict[str, Outguard] = {}  # screened variant -> its outguard
        self.fd_base = 100_000  # none measured yet: no draining wait

    @property
    def inst(self) -> sandbox.Instance:
        return self.box.inst


class TwoPbxBench:
    def __init__(self, cfg: TwoPbxConfig) -> None:
        self.cfg = cfg
        self.work = cfg.work
        self.pbxes: list[Pbx] = []
        self.redis: RedisServer | None = None
        self.pg: PostgresServer | None = None
        self.steps: list[Step] = []
        self.setup_info: dict[str, Any] = {}
        self.began = time.monotonic()
        self.cut_by_budget = False

    # -- set-up and tear-down ---------------------------------------------------------

    def setup(self) -> None:
        cfg = self.cfg
        if os.geteuid() != 0:
            raise SystemExit("the two-PBX benchmark needs root (the sandbox is a chroot)")
        if shutil.which("sipp") is None:
            raise SystemExit("sipp is missing: apt-get install -y sip-tester")
        if cfg.capture and shutil.which("dumpcap") is None:
            logger.warning("dumpcap is missing (apt-get install tshark): post-dial delay "
                           "from SIPp's own ticks (~4 ms steps)")
            cfg.capture = False
        unknown = set(cfg.variants) - set(ENDPOINTS)
        if unknown:
            raise SystemExit(f"unknown variant(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(ENDPOINTS)}")
        t0 = time.perf_counter()
        numbers = fresh_work(self.work, cfg.list_numbers, cfg.callees)
        self.redis = RedisServer(REDIS_BASE_PORT + cfg.offset + SERVERS_SHIFT, f"{cfg.name}")
        self.redis.start()
        self.pg = PostgresServer(PG_BASE_PORT + cfg.offset + SERVERS_SHIFT, f"{cfg.name}")
        self.pg.start()
        logger.info("seeding the shared store with %d listed numbers", cfg.list_numbers)
        self.setup_info["store"] = seed_store(self.pg.url(), numbers)
        for key, inst in (("a", sandbox.new_instance(cfg.name, cfg.offset)),
                          ("b", second_instance(f"{cfg.name}-b", cfg.offset))):
            box = sandbox.Sandbox(inst)
            self.pbxes.append(Pbx(key, box))  # before start: stopped on the way out
            box.start()
            logger.info("sandbox %s up: SIP %d, ARI %s", inst.name, inst.ports.sip,
                        inst.ari_url)
        extra: tuple[str, ...] = ("--time-requests", "--time-stages") if cfg.diagnose else ()
        for variant in ("cluster", "cluster-unbatched", "embedded"):
            if variant not in cfg.variants:
                continue
            for pbx in self.pbxes:
                name = pbx.key if variant == "cluster" else f"{pbx.key}-{variant}"
                if variant.startswith("cluster"):
                    store, redis_url = self.pg.url(), self.redis.url
                else:  # its own SQLite store with the same list, caps in memory
                    store, redis_url = str(self.work / f"embedded-{pbx.key}.db"), None
                    self.setup_info[f"store-{name}"] = seed_store(store, numbers)
                toml = self.work / f"settings-{name}.toml"
                toml.write_text(settings_toml(pbx.inst, f"pbx-{pbx.key}", store, redis_url,
                                              self.work / f"spool-{name}",
                                              cfg.redis_timeout_ms), encoding="utf-8")
                unbatched = ("--feed-linger-ms", "0") if variant == "cluster-unbatched" else ()
                pbx.outguards[variant] = Outguard(pbx.key, toml, "ari,ami", self.work,
                                                  pbx.inst, extra + unbatched)
        self.setup_info["setup_s"] = round(time.perf_counter() - t0, 1)
        self.sanity()

    def teardown(self) -> None:
        for pbx in self.pbxes:
            for og in pbx.outguards.values():
                try:
                    og.stop()
                except Exception:  # noqa: BLE001
                    logger.exception("stopping outguard %s", og.name)
        procs.kill_all()
        for pbx in self.pbxes:
            try:
                pbx.box.stop()
            except Exception:  # noqa: BLE001
                logger.exception("stopping sandbox %s", pbx.inst.name)
        for server in (self.pg, self.redis):
            if server is not None:
                try:
                    server.stop()
                except Exception:  # noqa: BLE001
                    logger.exception("stopping %s", type(server).__name__)

    @contextmanager
    def serving(self, variant: str) -> Iterator[list[Outguard]]:
        """Both outguard instances for a screened step (started together, stopped after
        it: no outguard AMI session loads the PBXes during the baseline's steps)."""
        if not ENDPOINTS[variant][1]:
            yield []
            return
        ogs = [p.outguards[variant] for p in self.pbxes if variant in p.outguards]
        if variant == "embedded":  # the cluster's OUTGUARD_PBX would cost a request a call
            for pbx in self.pbxes:
                pbx.box.reset_globals()
        try:
            with ThreadPoolExecutor(len(ogs)) as pool:
                for started in [pool.submit(og.start) for og in ogs]:
                    started.result()
            yield ogs
        finally:
            for og in ogs:
                og.stop()

    def redis_scripts(self) -> int:
        """EVALSHA calls Redis has served so far (INFO commandstats)."""
        import redis

        assert self.redis is not None
        client = redis.Redis(port=self.redis.port, host="127.0.0.1", socket_timeout=10)
        try:
            stats: dict[str, Any] = client.info("commandstats")
        finally:
            client.close()
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))

    def sanity(self) -> None:
        """Per PBX and variant, one unlisted call (200) and one listed (403 when screened):
        both instances read the one shared store; screening reserves in Redis."""
        unlisted, listed = next(callee_numbers(1)), next(listed_numbers(1))
        problems = []
        for variant in self.cfg.variants:
            endpoint, screened = ENDPOINTS[variant]
            scripts = self.redis_scripts()
            with self.serving(variant):
                for pbx in self.pbxes:
                    with sipp.Carrier(pbx.inst, hold_ms=100, limit_s=120):
                        for number, want in ((unlisted, 200), (listed, 403 if screened else 200)):
                            run = sipp.place_calls(pbx.inst, number, from_user=endpoint,
                                                   caller_id=CALLER_ID, timeout_s=20)
                            got = run.only.final if run.calls else None
                            if got != want:
                                problems.append(f"{variant} on {pbx.key}: {number} got {got},"
                                                f" want {want}")
            if variant.startswith("cluster") and (
                    self.redis_scripts() - scripts < len(self.pbxes)):
                problems.append(f"{variant}: Redis served no reservation")
        if problems:
            raise RuntimeError("sanity calls failed: " + "; ".join(problems))
        logger.info("sanity calls: both PBXes allow the unlisted number and, screened, "
                    "refuse the listed one")

    # -- one step -----------------------------------------------------------------------

    def wait_drained(self) -> float:
        """Until each Asterisk is back near its warm open files with no channel left."""
        began = time.monotonic()
        for pbx in self.pbxes:
            wait_drained(pbx.box, pbx.fd_base + self.cfg.fd_margin,
                         began + self.cfg.drain_timeout_s)
        return time.monotonic() - began

    def cpu_now(self, ogs: list[Outguard]) -> dict[str, Any]:
        assert self.redis is not None and self.redis.proc is not None
        assert self.pg is not None and self.pg.proc is not None
        now: dict[str, Any] = {"machine": read_cpu_times()}
        for pbx in self.pbxes:
            pid = pbx.box.pid()
            now[f"asterisk-{pbx.key}"] = read_pid_cpu(pid) if pid else None
        for og in ogs:
            now[f"outguard-{og.name}"] = read_pid_cpu(og.pid) if og.pid else None
        now["redis"] = read_pid_cpu(self.redis.proc.pid)
        now["postgres"] = read_children_cpu(self.pg.proc.pid)
        return now

    def step(self, variant: str, phase: str, rep: int, rate: float, calls: int) -> Step:
        cfg = self.cfg
        endpoint, _ = ENDPOINTS[variant]
        result = Step(variant, phase, rep, rate)
        result.drain_s = self.wait_drained()
        here = Path(tempfile.mkdtemp(prefix=f"{variant}-{phase}-", dir=self.work))
        per_pbx = [calls // 2, calls - calls // 2]
        side_rate = rate / 2
        call_s = max(per_pbx) / side_rate
        with self.serving(variant) as serving:
            carriers, agents = [], []
            for pbx in self.pbxes:
                carriers.append(procs.spawn(
                    carrier_args(pbx.inst.ports.carrier, cfg.hold_ms, call_s + 60,
                                 sipp.MEDIA_SHIFT, sipp.CONTROL_SHIFT),
                    cwd=here, stdout=here / f"carrier-{pbx.key}.out"))
            pcap_file = here / "agents.pcap"
            dumpcap = (start_capture(pcap_file, [p.inst.ports.agent for p in self.pbxes], here)
                       if cfg.capture else None)
            time.sleep(0.3)
            for pbx, carrier in zip(self.pbxes, carriers, strict=True):
                if carrier.poll() is not None:
                    raise RuntimeError(f"carrier SIPp of {pbx.key} exited at once: "
                                       f"{(here / f'carrier-{pbx.key}.out').read_text()[-500:]}")
            for og in serving:
                og.dump()  # a fresh latency collection
            scripts0 = self.redis_scripts()
            cpu0 = self.cpu_now(serving)
            began = time.monotonic()
            for pbx, n in zip(self.pbxes, per_pbx, strict=True):
                agents.append(procs.spawn(
                    agent_args(pbx.inst.ports.agent, pbx.inst.ports.sip, endpoint,
                               self.work / "callees.csv", n, side_rate, call_s + 30,
                               here / f"agent-{pbx.key}.log", sipp.MEDIA_SHIFT,
                               sipp.CONTROL_SHIFT),
                    cwd=here, stdout=here / f"agent-{pbx.key}.out"))
            reaped = self._wait_agents(agents, call_s + 45)
            result.seconds = time.monotonic() - began
            cpu1 = self.cpu_now(serving)
            scripts1 = self.redis_scripts()
            carriers_done = [procs.kill(c, grace_s=0) for c in carriers]
            if dumpcap is not None:
                procs.kill(dumpcap, signal.SIGINT, grace_s=5)
            for og in serving:
                body = og.dump()
                result.handling_ms += [x * 1000 for x in body.get("stasis_s", [])]
                for kind, xs in body.get("requests_ms", {}).items():
                    result.stages_ms.setdefault(kind, []).extend(xs)
        result.scripts = scripts1 - scripts0
        for key in cpu1:
            if key == "machine":
                continue
            if key == "postgres":
                result.cpu_s[key] = tree_cpu_delta(cpu0[key], cpu1[key])
            elif cpu0.get(key) is not None and cpu1[key] is not None:
                result.cpu_s[key] = cpu1[key].seconds() - cpu0[key].seconds()
        result.cpu_s["sipp"] = sum(r.cpu_s for r in reaped + carriers_done)
        share = cpu_share(cpu0["machine"], cpu1["machine"])
        result.busy, result.steal = share.busy, share.steal
        for pbx, n, agent in zip(self.pbxes, per_pbx, reaped, strict=True):
            result.sides.append(self._side(pbx, n, here, pcap_file if cfg.capture else None,
                                           agent.timed_out))
        result.judge(Limits())
        if result.passed:
            shutil.rmtree(here, ignore_errors=True)
        self.steps.append(result)
        logger.info("%s", result.summary())
        return result

    @staticmethod
    def _wait_agents(agents: list[Any], timeout_s: float) -> list[procs.Reaped]:
        """Both agents to their end, bounded by ``timeout_s`` (then SIGKILL)."""
        deadline = time.monotonic() + timeout_s
        done: dict[int, procs.Reaped] = {}
        while len(done) < len(agents):
            for i, agent in enumerate(agents):
                if i not in done:
                    got = procs.reap(agent, block=False)
                    if got is not None:
                        done[i] = got
            if time.monotonic() > deadline:
                for i, agent in enumerate(agents):
                    if i not in done:
                        logger.warning("SIPp agent ran past %.0f s: killed", timeout_s)
                        done[i] = procs.kill(agent, grace_s=0)
                        done[i].timed_out = True
                break
            time.sleep(0.02)
        return [done[i] for i in range(len(agents))]

    @staticmethod
    def _side(pbx: Pbx, calls: int, here: Path, pcap_file: Path | None,
              timed_out: bool) -> Side:
        leaked = reap_leftovers(pbx.box)
        seen = call_figures(here / f"agent-{pbx.key}.log", pcap_file, pbx.inst.ports.agent)
        return Side(pbx=pbx.key, calls=calls, completed=seen.completed, finals=seen.finals,
                    offered_cps=seen.offered_cps, pdd_ms=seen.pdd_ms,
                    pdd_source=seen.pdd_source, timed_out=timed_out, leaked_channels=leaked)

    # -- the programme ------------------------------------------------------------------

    def calls_for(self, rate: float) -> int:
        return max(20, min(self.cfg.step_max_calls, int(rate * self.cfg.step_seconds)))

    def over_budget(self) -> bool:
        if time.monotonic() - self.began > self.cfg.budget_minutes * 60:
            if not self.cut_by_budget:
                logger.warning("time budget of %.0f min spent: no further step",
                               self.cfg.budget_minutes)
            self.cut_by_budget = True
        return self.cut_by_budget

    def warm_up(self) -> None:
        """A short step per variant (not reported), then each PBX's warm open files."""
        for variant in self.cfg.variants:
            self.step(variant, "warmup", 0, 20, 40)
        time.sleep(3)
        for pbx in self.pbxes:
            pid = pbx.box.pid()
            pbx.fd_base = (open_fds(pid) if pid else 0) or 0
            logger.info("warm: %s has %d open files", pbx.inst.name, pbx.fd_base)

    def order(self, rep: int) -> list[str]:
        keys = list(self.cfg.variants)
        shift = (rep - 1) % len(keys)
        return keys[shift:] + keys[:shift]

    def run_rep(self, rep: int) -> None:
        cfg = self.cfg
        order = self.order(rep)
        logger.info("repetition %d of %d, order %s", rep, cfg.reps, " ".join(order))
        if cfg.moderate_calls > 0:
            for variant in order:
                if self.over_budget():
                    return
                self.step(variant, "moderate", rep, cfg.moderate_rate, cfg.moderate_calls)
        alive = list(order)
        for rate in cfg.rates:
            for variant in list(alive):
                if self.over_budget():
                    return
                if not self.step(variant, "search", rep, rate, self.calls_for(rate)).passed:
                    alive.remove(variant)
            if not alive:
                return
        logger.warning("rep %d: %s passed every rate up to %d calls/s; the search is capped",
                       rep, ", ".join(alive), cfg.rates[-1])

    def run(self) -> None:
        self.began = time.monotonic()
        self.warm_up()
        for rep in range(1, self.cfg.reps + 1):
            if self.over_budget():
                break
            self.run_rep(rep)

    def results(self) -> dict[str, Any]:
        cfg = asdict(self.cfg)
        cfg["work"] = str(self.cfg.work)
        return {"config": cfg, "setup": self.setup_info, "cut_by_budget": self.cut_by_budget,
                "fd_warm": {p.key: p.fd_base for p in self.pbxes},
                "steps": [s.to_json() for s in self.steps]}


def run_two_pbx(cfg: TwoPbxConfig) -> dict[str, Any]:
    """Set up, run every step, tear down (also on errors and Ctrl-C); the raw results."""
    bench = TwoPbxBench(cfg)
    try:
        bench.setup()
        bench.run()
    finally:
        bench.teardown()
    return bench.results()
