"""A private Docker daemon for tests, and the images of deploy/docker built from a base
imported from the sandbox's debootstrap tree (no image registry is reachable here).

The daemon has its own data root (kept in the cache between runs, so the imported base and
the image layers are reused), exec root, socket and pidfile; no bridge, no iptables rules:
containers use host networking only. It is stopped by its pid.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from outguard.errors import OutguardError
from outguard.sandbox import cache_dir, chroot_dir

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "docker"
#: what `docker import` leaves out of the chroot: kernel file systems and every sandbox
#: instance's configuration and state (passwords, sockets)
IMPORT_EXCLUDES = ("./proc", "./sys", "./dev", "./etc/asterisk/outguard-*",
                   "./run/asterisk/*", "./var/lib/asterisk/outguard-*",
                   "./var/log/asterisk/outguard-*", "./var/spool/asterisk/*")


class DockerError(OutguardError):
    """The test Docker daemon or a build failed."""


class Daemon:
    """``dockerd`` for one test instance; ``docker(...)`` runs the client against it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.data_root = cache_dir() / "docker" / name
        self.run_dir = Path(f"/run/og-docker-{name}")
        self.socket = self.run_dir / "docker.sock"
        self.pidfile = self.run_dir / "docker.pid"
        self.log = cache_dir() / "docker" / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_BUILDKIT": "0"}

    def docker(self, *args: str, timeout: float = 120.0, check: bool = True,
               input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["docker", *args], env=self.env, capture_output=True,
                              text=input is None, input=input, timeout=timeout)
        if check and done.returncode != 0:
            out = done.stderr if isinstance(done.stderr, str) else done.stderr.decode()
            raise DockerError(f"docker {' '.join(args[:3])} ... failed: {out[-2000:]}")
        return done

    def start(self, timeout: float = 60.0) -> None:
        self.stop()
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self._proc = subprocess.Popen(
                ["dockerd", "--bridge=none", "--iptables=false", "--ip-masq=false",
                 "--data-root", str(self.data_root), "--exec-root", str(self.run_dir / "exec"),
                 "--host", f"unix://{self.socket}", "--pidfile", str(self.pidfile)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise DockerError(f"dockerd exited with {self._proc.returncode}; see {self.log}")
            if self.socket.exists() and self.docker("version", check=False,
                                                    timeout=10).returncode == 0:
                return
            time.sleep(0.2)
        self.stop()
        raise DockerError(f"dockerd did not answer within {timeout:.0f} s; see {self.log}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the daemon by its pid (it stops its containerd), then SIGKILL."""
        pid = self._proc.pid if self._proc is not None else _read_pid(self.pidfile)
        if pid is None or (self._proc is None and not _is_our_dockerd(pid, self.socket)):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                break
            if self._proc is None and not _alive(pid):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
            if self._proc is not None:
                self._proc.wait(10)
        self._proc = None

    # -- images -------------------------------------------------------------------------

    def has_image(self, tag: str) -> bool:
        return self.docker("image", "inspect", tag, check=False, timeout=30).returncode == 0

    def import_sandbox_base(self) -> str:
        """The sandbox chroot as an image (imported once per chroot build, then reused)."""
        root = chroot_dir()
        marker = (root / ".outguard-chroot").read_bytes()
        tag = "outguard-base:sid-" + hashlib.sha256(marker).hexdigest()[:12]
        if self.has_image(tag):
            return tag
        excludes = [f"--exclude={e}" for e in IMPORT_EXCLUDES]
        tar = subprocess.Popen(["tar", "-C", str(root), *excludes, "-c", "."],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            done = subprocess.run(["docker", "import", "-", tag], env=self.env,
                                  stdin=tar.stdout, capture_output=True, timeout=300)
        finally:
            if tar.stdout is not None:
                tar.stdout.close()
            tar.wait(60)
        if done.returncode != 0:
            raise DockerError(f"docker import failed: {done.stderr.decode()[-2000:]}")
        return tag

    def build(self, context: Path, dockerfile: str, tag: str, base: str,
              target: str | None = None, timeout: float = 600.0) -> None:
        args = ["build", "-q", "--network", "host", "--build-arg", f"BASE={base}",
                "-f", str(context / dockerfile), "-t", tag]
        if target:
            args += ["--target", target]
        self.docker(*args, str(context), timeout=timeout)


def build_context(daemon: Daemon, dest: Path, base: str) -> Path:
    """deploy/docker with dist/: outguard's wheel and its dependencies' wheels for the
    Python of the image (downloaded once per Python version, cached)."""
    shutil.copytree(DEPLOY, dest)
    dist = dest / "dist"
    dist.mkdir(exist_ok=True)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "--disable-pip-version-check", "-w", str(dist), str(REPO)], "building the wheel")
    (wheel,) = dist.glob("outguard-*.whl")
    daemon.build(dest, "Dockerfile", "outguard-python:test", base, target="python")
    version = daemon.docker("run", "--rm", "--network", "host", "outguard-python:test",
                            "python3", "-c", "import sys; print('%d%d' % sys.version_info[:2])",
                            timeout=60).stdout.strip()
    wheels = cache_dir() / "docker" / f"wheels-cp{version}"
    wheels.mkdir(parents=True, exist_ok=True)
    download = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                "--only-binary=:all:", "--python-version", f"{version[0]}.{version[1:]}",
                "--implementation", "cp", "--abi", f"cp{version}", "--abi", "abi3",
                "--abi", "none", "--platform", "manylinux_2_28_x86_64",
                "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
                "--platform", "any", "--find-links", str(wheels), "-d", str(wheels)]
    # the cache first, with no index at all: once it holds every dependency, nothing is
    # asked of any index (an unreachable default index cost pip its whole timeout under
    # load); only a cache that lacks something goes to the configured indexes
    cached = subprocess.run([*download, "--no-index", str(wheel)], capture_output=True,
                            text=True, timeout=600)
    if cached.returncode != 0:
        _run([*download, str(wheel)], "downloading the dependencies' wheels")
    for found in wheels.glob("*.whl"):
        if not found.name.startswith("outguard-"):
            shutil.copy(found, dist / found.name)
    return dest


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise DockerError(f"{what} failed: {done.stderr[-2000:]}")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_our_dockerd(pid: int, socket: Path) -> bool:
    """A pid from an old pidfile is ours only if it is dockerd on our socket."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and cmdline[0].endswith(b"dockerd") and \
        f"unix://{socket}".encode() in cmdline


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
