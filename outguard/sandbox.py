"""The sandbox PBX: a real Asterisk 22 in a Debian sid chroot, on 127.0.0.1.

Debian bookworm ships no Asterisk, so the sandbox builds a minimal sid chroot once
(``debootstrap --variant=minbase sid``, then ``apt-get install asterisk`` inside it) and
keeps it in a cache directory outside the repository. Every sandbox *instance* (the demo,
the test suite, a benchmark) gets its own configuration, run, log and database directories
inside that chroot and its own ports, so several can run side by side.

Needs root (chroot). Nothing is mounted: Asterisk runs without /proc in the chroot.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from outguard import dialplan_vars as dv
from outguard.errors import OutguardError
from outguard.resources import resource_dir

logger = logging.getLogger(__name__)

CHROOT_MARKER = ".outguard-chroot"


class SandboxError(OutguardError):
    """The sandbox PBX could not be built, started or reached."""


def cache_dir() -> Path:
    """Where the chroot and the instances live (``OUTGUARD_CACHE`` overrides)."""
    base = os.environ.get("OUTGUARD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "outguard"
    )
    return Path(base)


@dataclass(frozen=True)
class Ports:
    """Every port one sandbox instance uses; all bound to 127.0.0.1."""

    sip: int = 5160
    http: int = 8088
    ami: int = 5038
    agi: int = 4573  # outguard's FastAGI server; the dialplan points here
    carrier: int = 5180  # the carrier (a SIPp UAS in tests) listens here
    agent: int = 5170  # the agent phone (SIPp UAC) binds here
    rtp_start: int = 20000
    rtp_end: int = 20999

    def shifted(self, offset: int) -> Ports:
        """The same layout moved by ``offset`` (RTP by 10 x offset), for a second instance."""
        moved = {k: v + offset for k, v in asdict(self).items() if not k.startswith("rtp")}
        return Ports(
            **moved, rtp_start=self.rtp_start + 10 * offset, rtp_end=self.rtp_end + 10 * offset
        )


@dataclass(frozen=True)
class Instance:
    """One sandbox Asterisk: its name, ports and credentials."""

    name: str = "demo"
    ports: Ports = field(default_factory=Ports)
    ari_user: str = "outguard"
    ari_password: str = ""
    ami_user: str = "outguard"
    ami_password: str = ""
    app: str = "outguard"

    @property
    def ari_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}/ari"

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Instance:
        ports = Ports(**data.pop("ports"))  # type: ignore[arg-type]
        return cls(ports=ports, **data)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the chroot


def chroot_dir() -> Path:
    return cache_dir() / "asterisk-sid"


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` (never copy or delete a tree that has any)."""
    root = str(path.resolve())
    found = []
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            point = line.split()[1].replace("\\040", " ")
            if point == root or point.startswith(root + "/"):
                found.append(point)
    return found


def chroot_is_sound(root: Path) -> bool:
    """A finished build whose Asterisk starts far enough to print its version."""
    if not (root / CHROOT_MARKER).is_file() or not (root / "usr/sbin/asterisk").exists():
        return False
    try:
        out = subprocess.run(
            ["chroot", str(root), "asterisk", "-V"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.startswith("Asterisk")


def _remove_tree(path: Path) -> None:
    if not path.exists():
        return
    busy = mounts_under(path)
    if busy:
        raise SandboxError(f"refusing to delete {path}: mounted below it: {', '.join(busy)}")
    shutil.rmtree(path)


def _run_logged(cmd: list[str], log: Path, what: str) -> None:
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C")
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise SandboxError(
            f"{what} failed (exit {done.returncode}); last lines of {log}:\n" + "\n".join(tail)
        )


def ensure_chroot(rebuild: bool = False) -> Path:
    """Return the chroot with Asterisk, building it first when absent or broken."""
    root = chroot_dir()
    if not rebuild and chroot_is_sound(root):
        return root
    if os.geteuid() != 0:
        raise SandboxError("building the sandbox PBX needs root (debootstrap and chroot)")
    if shutil.which("debootstrap") is None:
        raise SandboxError("debootstrap is missing: apt-get install -y debootstrap")
    started = time.monotonic()
    partial = root.with_name(root.name + ".partial")
    log = cache_dir() / "chroot-build.log"
    cache_dir().mkdir(parents=True, exist_ok=True)
    log.write_text("", encoding="utf-8")
    _remove_tree(partial)
    logger.info("building the sandbox chroot in %s (log: %s)", partial, log)
    _run_logged(["debootstrap", "--variant=minbase", "sid", str(partial)], log, "debootstrap")
    shutil.copyfile("/etc/resolv.conf", partial / "etc/resolv.conf")
    apt = ["chroot", str(partial), "apt-get", "-o", "Acquire::Check-Valid-Until=false"]
    _run_logged([*apt, "update"], log, "apt-get update in the chroot")
    _run_logged(
        [*apt, "install", "-y", "--no-install-recommends", "asterisk"], log,
        "apt-get install asterisk in the chroot",
    )
    _run_logged(["chroot", str(partial), "apt-get", "clean"], log, "apt-get clean")
    version = subprocess.run(
        ["chroot", str(partial), "asterisk", "-V"], capture_output=True, text=True
    ).stdout.strip()
    (partial / CHROOT_MARKER).write_text(version + "\n", encoding="utf-8")
    _remove_tree(root)
    partial.rename(root)
    logger.info("sandbox chroot ready: %s in %.0f s", version, time.monotonic() - started)
    return root


# ---------------------------------------------------------------- configuration


def _module_dir(root: Path) -> str:
    packaged = (root / "etc/asterisk/asterisk.conf").read_text(encoding="utf-8")
    match = re.search(r"^astmoddir\s*=>\s*(\S+)", packaged, re.M)
    return match.group(1) if match else "/usr/lib/asterisk/modules"


def _inside(name: str) -> dict[str, str]:
    """Paths of an instance's directories as Asterisk sees them (inside the chroot)."""
    return {
        "etc": f"/etc/asterisk/outguard-{name}",
        "run": f"/run/asterisk/outguard-{name}",
        "log": f"/var/log/asterisk/outguard-{name}",
        "varlib": f"/var/lib/asterisk/outguard-{name}",
    }


def render(template: str, values: dict[str, str]) -> str:
    """Fill ``{{key}}`` placeholders; an unknown key is an error, never left in place."""

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise SandboxError(f"template placeholder {{{{{key}}}}} has no value")
        return values[key]

    return re.sub(r"\{\{(\w+)\}\}", fill, template)


def entity_id(name: str) -> str:
    """The instance's Asterisk entity id (``asterisk.conf`` ``entityid``): a locally
    administered MAC address of its own, so that two sandbox PBXes on one host are two
    Asterisk servers to outguard's PBX claims, as two machines would be (unset, Asterisk
    takes the host's MAC, the same for every instance here)."""
    digest = hashlib.sha256(name.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def write_config(root: Path, inst: Instance) -> Path:
    """Write the instance's Asterisk configuration into the chroot; return its etc dir."""
    dirs = _inside(inst.name)
    values = {
        **dirs,
        "name": inst.name,
        "entityid": entity_id(inst.name),
        "moddir": _module_dir(root),
        "ari_user": inst.ari_user,
        "ari_password": inst.ari_password,
        "ami_user": inst.ami_user,
        "ami_password": inst.ami_password,
        **{k: str(v) for k, v in asdict(inst.ports).items()},
    }
    for path in dirs.values():
        (root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
    (root / dirs["varlib"].lstrip("/") / "spool").mkdir(exist_ok=True)
    (root / dirs["varlib"].lstrip("/") / "cache").mkdir(exist_ok=True)
    etc = root / dirs["etc"].lstrip("/")
    dialplan = resource_dir("dialplan")  # the source tree's, or the wheel's share/outguard
    for template in sorted((dialplan / "sandbox").glob("*.conf")):
        (etc / template.name).write_text(
            render(template.read_text(encoding="utf-8"), values), encoding="utf-8"
        )
    shutil.copyfile(dialplan / "outguard.conf", etc / "outguard.conf")
    return etc


# ---------------------------------------------------------------- running it


def instance_dir(name: str) -> Path:
    return cache_dir() / "instances" / name


def _state_file(name: str) -> Path:
    return instance_dir(name) / "state.json"


def new_instance(name: str = "demo", offset: int = 0) -> Instance:
    """An instance with fresh secrets and ports moved by ``offset``."""
    return Instance(
        name=name,
        ports=Ports().shifted(offset),
        ari_password=secrets.token_hex(12),
        ami_password=secrets.token_hex(12),
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child is dead for our purposes
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _port_free(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _check_ports(inst: Instance) -> None:
    wanted = [
        ("SIP (udp)", inst.ports.sip, socket.SOCK_DGRAM),
        ("HTTP/ARI (tcp)", inst.ports.http, socket.SOCK_STREAM),
        ("AMI (tcp)", inst.ports.ami, socket.SOCK_STREAM),
    ]
    taken = [f"{what} {port}" for what, port, kind in wanted if not _port_free(port, kind)]
    if taken:
        raise SandboxError(
            f"sandbox {inst.name!r}: port(s) already in use on 127.0.0.1: {', '.join(taken)}"
            " (another sandbox or PBX? stop it, or choose another --offset)"
        )


def ari_get(inst: Instance, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """A blocking ARI GET, for readiness checks and tools (the app uses aiohttp)."""
    return ari_request(inst, "GET", path, timeout)


def ari_request(inst: Instance, method: str, path: str,
                timeout: float = 2.0) -> tuple[int, bytes]:
    """A blocking ARI request (tools and tests); the status and the body."""
    token = base64.b64encode(f"{inst.ari_user}:{inst.ari_password}".encode()).decode()
    request = urllib.request.Request(
        inst.ari_url + path, method=method, headers={"Authorization": "Basic " + token}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class Sandbox:
    """Start, wait for and stop one sandbox Asterisk instance."""

    def __init__(self, inst: Instance, root: Path | None = None) -> None:
        self.inst = inst
        self.root = root or chroot_dir()
        self.conf = _inside(inst.name)["etc"] + "/asterisk.conf"
        self.console_log = instance_dir(inst.name) / "console.log"
        self._proc: subprocess.Popen[bytes] | None = None  # when this object started it

    def cli(self, command: str, timeout: float = 15.0) -> str:
        """Run one Asterisk CLI command (``asterisk -rx``) and return its output."""
        done = subprocess.run(
            ["chroot", str(self.root), "asterisk", "-C", self.conf, "-rx", command],
            capture_output=True, text=True, timeout=timeout,
        )
        if done.returncode != 0:
            raise SandboxError(f"asterisk -rx {command!r} failed: {done.stderr.strip()}")
        return done.stdout

    def pid(self) -> int | None:
        try:
            state = json.loads(_state_file(self.inst.name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        pid = state.get("pid")
        return pid if isinstance(pid, int) and _pid_alive(pid) else None

    def start(self, timeout: float = 60.0) -> None:
        """Write the configuration, start Asterisk and wait until it is fully booted."""
        if self.pid() is not None:
            self.stop()
        _check_ports(self.inst)
        write_config(self.root, self.inst)
        here = instance_dir(self.inst.name)
        here.mkdir(parents=True, exist_ok=True)
        inside_run = self.root / _inside(self.inst.name)["run"].lstrip("/")
        for stale in ("asterisk.ctl", "asterisk.pid"):
            (inside_run / stale).unlink(missing_ok=True)
        with open(self.console_log, "wb") as console:
            proc = subprocess.Popen(
                ["chroot", str(self.root), "asterisk", "-f", "-n", "-C", self.conf],
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._proc = proc
        state = {"pid": proc.pid, "instance": self.inst.to_json(), "started": time.time()}
        _state_file(self.inst.name).write_text(json.dumps(state, indent=2), encoding="utf-8")
        os.chmod(_state_file(self.inst.name), 0o600)
        try:
            self.wait_ready(timeout, proc)
        except BaseException:
            self.stop(timeout=5)
            raise

    def wait_ready(self, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise SandboxError(
                    f"Asterisk exited with {proc.returncode} while starting; see "
                    f"{self.console_log} and {self.log_path()}"
                )
            try:
                status, _ = ari_get(self.inst, "/asterisk/info", timeout=1.0)
                if status == 200:
                    self.cli("core waitfullybooted", timeout=max(1.0, deadline - time.monotonic()))
                    return
                last = f"ARI answered {status}"
            except (OSError, SandboxError, subprocess.TimeoutExpired) as err:
                last = str(err)
            time.sleep(0.1)
        raise SandboxError(f"Asterisk not ready after {timeout:.0f} s ({last})")

    def log_path(self) -> Path:
        return self.root / _inside(self.inst.name)["log"].lstrip("/") / "messages.log"

    def stop(self, timeout: float = 15.0) -> None:
        """Stop Asterisk: a clean ``core stop now``, then SIGTERM, then SIGKILL."""
        pid = self.pid()
        if pid is None:
            self._wait_own()  # died by itself: collect it
            return
        try:
            self.cli("core stop now", timeout=5)
        except (SandboxError, subprocess.TimeoutExpired) as err:
            logger.warning("clean stop of sandbox %s failed (%s); signalling", self.inst.name, err)
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                try:
                    os.killpg(pid, sig)
                except ProcessLookupError:
                    break
            end = time.monotonic() + (timeout if sig is None else 5)
            while time.monotonic() < end and _pid_alive(pid):
                self._reap(pid)
                time.sleep(0.05)
            if not _pid_alive(pid):
                break
        self._reap(pid)
        self._wait_own()
        _state_file(self.inst.name).unlink(missing_ok=True)

    def _wait_own(self, timeout: float = 5.0) -> None:
        """Collect the Asterisk this object started, once it is stopping: /proc can show a
        zombie a moment before waitpid(WNOHANG) returns it, so poll() alone is not enough."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout)

    def _reap(self, pid: int) -> None:
        if self._proc is not None and self._proc.pid == pid:
            if self._proc.poll() is not None:
                self._proc = None
            return
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass

    def restart(self, timeout: float = 60.0) -> None:
        self.stop()
        self.start(timeout)

    def channels(self) -> int:
        """Active channels (``core show channels count``)."""
        out = self.cli("core show channels count")
        match = re.search(r"(\d+) active channel", out)
        return int(match.group(1)) if match else 0

    def wait_channels(self, count: int = 0, timeout_s: float = 60.0) -> int:
        """``channels()`` once it is ``count``, or what it is at the deadline: Asterisk
        destroys a call's channels on its own time after the BYE and its answer, which a
        SIPp run that just returned may not have waited for (more so on a loaded
        machine). For synchronous tests; an asynchronous one polls ``channels`` without
        blocking its loop."""
        deadline = time.monotonic() + timeout_s
        while True:
            now = self.channels()
            if now == count or time.monotonic() >= deadline:
                return now
            time.sleep(0.05)

    def reset_globals(self) -> None:
        """Empty the globals outguard sets at connect (``OUTGUARD_PBX`` and its owner
        mark ``OUTGUARD_PBX_SET``: a cluster-mode test leaves its PBX name there, which an
        embedded outguard must not find)."""
        for name in (dv.PBX, dv.PBX_SET):
            status, body = ari_request(self.inst, "POST",
                                       f"/asterisk/variable?variable={name}&value=")
            if status >= 300:
                raise RuntimeError(f"cannot reset {name}: {status} {body[:200]!r}")

    def hangup_all(self, timeout: float = 10.0) -> None:
        """Hang up every channel and wait until none is left (a clean state per test)."""
        self.cli("channel request hangup all")
        deadline = time.monotonic() + timeout
        while self.channels() and time.monotonic() < deadline:
            time.sleep(0.05)


def load_instance(name: str) -> Instance:
    """The instance a running (or last started) sandbox was started with."""
    try:
        state = json.loads(_state_file(name).read_text(encoding="utf-8"))
    except OSError as err:
        raise SandboxError(f"sandbox {name!r} is not running ({err.strerror})") from err
    return Instance.from_json(state["instance"])


def up(name: str = "demo", offset: int = 0, timeout: float = 60.0) -> Sandbox:
    """Build the chroot if needed and (re)start the named instance."""
    root = ensure_chroot()
    inst = new_instance(name, offset)
    previous = _state_file(name)
    if previous.exists():
        try:
            old = load_instance(name)
            inst = replace(inst, ari_password=old.ari_password, ami_password=old.ami_password)
        except (SandboxError, KeyError, TypeError, ValueError):
            pass
        Sandbox(inst, root).stop()
    box = Sandbox(inst, root)
    box.start(timeout)
    return box
