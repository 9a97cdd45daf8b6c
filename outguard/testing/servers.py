"""Real PostgreSQL and Redis servers for tests and benchmarks, on 127.0.0.1 ports of their own.

Like the sandbox Asterisk, each server is a child process started from the Debian
packages' binaries, waited for until it answers, and stopped by its pid (never by name).

PostgreSQL's ``initdb`` and ``postgres`` refuse to run as root: as root the cluster runs as
an unprivileged user (``postgres`` from the Debian package, else one created for the
purpose) that owns a private directory made for the test (data and Unix socket inside).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# Ports are the base plus the test instance's offset (100, 200, ... below 3000): clear of
# every sandbox port (SIP/HTTP/AMI/AGI below 10000, RTP from 20000) and of each other.
PG_BASE_PORT = 14000
REDIS_BASE_PORT = 17000
PG_USER_CANDIDATES = ("postgres", "outguard-pg")


class ServerUnavailable(RuntimeError):
    """The binaries for a server are not installed (the message says which package)."""


def pg_bindir() -> Path:
    """The newest installed PostgreSQL server's bin directory (Debian layout)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    which = shutil.which("postgres")
    if which:
        return Path(which).parent
    raise ServerUnavailable("PostgreSQL server binaries not found (apt-get install postgresql)")


def redis_binary() -> str:
    which = shutil.which("redis-server")
    if which is None:
        raise ServerUnavailable("redis-server not found (apt-get install redis-server)")
    return which


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_until(check: object, timeout: float, what: str, proc: subprocess.Popen[bytes],
                log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {_tail(log)}")
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready within {timeout} s: {_tail(log)}")


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop_pid(proc: subprocess.Popen[bytes], sig: int, timeout: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    os.kill(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _unprivileged_user() -> pwd.struct_passwd:
    for name in PG_USER_CANDIDATES:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
         PG_USER_CANDIDATES[-1]],
        check=True, capture_output=True,
    )
    return pwd.getpwnam(PG_USER_CANDIDATES[-1])


@dataclass
class RedisServer:
    """One redis-server without persistence, bound to 127.0.0.1:``port``."""

    port: int
    name: str = "test"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    workdir: Path | None = None
    unix_socket: bool = False  # listen on ``socket_path`` too

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket_path(self) -> Path:
        assert self.workdir is not None and self.unix_socket
        return self.workdir / "redis.sock"

    def start(self, timeout: float = 20.0) -> None:
        if _port_open(self.port):
            raise RuntimeError(f"port {self.port} is already in use; is another redis running?")
        self.workdir = Path(tempfile.mkdtemp(prefix=f"outguard-redis-{self.name}-"))
        log = self.workdir / "redis.log"
        self.proc = subprocess.Popen(  # noqa: S603
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--dir", str(self.workdir), "--logfile", str(log),
             *(("--unixsocket", str(self.socket_path), "--unixsocketperm", "700")
               if self.unix_socket else ())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_until(self._ping, timeout, "redis-server", self.proc, log)

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL (a crash: everything in memory is gone)."""
        if self.proc is not None:
            _stop_pid(self.proc, signal.SIGKILL)

    def restart(self, timeout: float = 20.0) -> None:
        """Kill and start again on the same port: an emptied Redis."""
        self.kill()
        deadline = time.monotonic() + timeout
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        workdir = self.workdir
        self.start(timeout)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    def stop(self) -> None:
        if self.proc is not None:
            _stop_pid(self.proc, signal.SIGTERM)
            self.proc = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


@dataclass
class PostgresServer:
    """A throw-away PostgreSQL cluster on 127.0.0.1:``port`` with database ``outguard``.

    The cluster is built for tests: ``fsync=off`` (a crash of the host may lose it; a
    crash of a client never does), C collation (the same ordering as SQLite's).
    """

    port: int
    name: str = "test"
    database: str = "outguard"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    workdir: Path | None = None
    _user: pwd.struct_passwd | None = field(default=None, repr=False)

    @property
    def socket_dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "socket"

    @property
    def user(self) -> str:
        assert self._user is not None
        return self._user.pw_name

    def url(self, database: str | None = None) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database or self.database}"

    def _ids(self) -> tuple[int | None, int | None, list[int] | None]:
        """user, group and extra groups to run the server as (root only drops to them)."""
        if os.geteuid() != 0:
            return None, None, None
        assert self._user is not None
        return self._user.pw_uid, self._user.pw_gid, []

    def start(self, timeout: float = 60.0) -> None:
        if _port_open(self.port):
            raise RuntimeError(f"port {self.port} is already in use; is another PostgreSQL running?")
        bindir = pg_bindir()
        self._user = pwd.getpwuid(os.geteuid()) if os.geteuid() != 0 else _unprivileged_user()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"outguard-pg-{self.name}-"))
        data, log = self.workdir / "data", self.workdir / "postgres.log"
        self.socket_dir.mkdir()
        os.chown(self.workdir, self._user.pw_uid, self._user.pw_gid)
        os.chown(self.socket_dir, self._user.pw_uid, self._user.pw_gid)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "HOME": str(self.workdir)}
        uid, gid, groups = self._ids()
        init = subprocess.run(  # noqa: S603
            [str(bindir / "initdb"), "-D", str(data), "-U", self.user, "--auth=trust",
             "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"],
            cwd=self.workdir, env=env, capture_output=True, timeout=120,
            user=uid, group=gid, extra_groups=groups,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.decode(errors='replace')[-2000:]}")
        log_fh = open(log, "wb")  # noqa: SIM115 - the child owns it
        try:
            self.proc = subprocess.Popen(  # noqa: S603
                [str(bindir / "postgres"), "-D", str(data), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1",
                 "-c", f"unix_socket_directories={self.socket_dir}",
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "shared_buffers=32MB",
                 "-c", "max_connections=200", "-c", "log_min_messages=warning"],
                cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=log_fh,
                stderr=subprocess.STDOUT, start_new_session=True,
                user=uid, group=gid, extra_groups=groups,
            )
        finally:
            log_fh.close()
        _wait_until(lambda: self._ready(bindir), timeout, "postgres", self.proc, log)
        self.psql(f"CREATE DATABASE {self.database}")

    def _ready(self, bindir: Path) -> bool:
        probe = subprocess.run(  # noqa: S603
            [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            capture_output=True, timeout=10,
        )
        return probe.returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one statement through psql (as the cluster's owner); return its output."""
        out = subprocess.run(  # noqa: S603
            [str(pg_bindir() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
             "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
            capture_output=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
        )
        if out.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {out.stderr.decode(errors='replace')}")
        return out.stdout.decode()

    def _admin_execute(self, sql: str) -> None:
        """One statement on the ``postgres`` database (psycopg if installed, else psql)."""
        try:
            import psycopg
        except ImportError:
            self.psql(sql)
            return
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str) -> str:
        """A fresh, empty database in this cluster; return its URL."""
        self._admin_execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        if self.proc is not None:
            _stop_pid(self.proc, signal.SIGINT)  # fast shutdown
            self.proc = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
