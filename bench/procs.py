"""Child processes of the benchmark: started in their own process group, reaped with
``wait4`` (so SIPp's CPU time is known exactly), and all killed on the way out, on
exceptions and on Ctrl-C/SIGTERM too."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

_LIVE: set[subprocess.Popen[bytes]] = set()


def _kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_all() -> None:
    """SIGKILL every process group this module started and has not reaped yet."""
    for proc in list(_LIVE):
        if proc.returncode is None:
            _kill_group(proc)
            try:
                os.waitpid(proc.pid, 0)
            except ChildProcessError:
                pass
            proc.returncode = -9
        _LIVE.discard(proc)


def _on_signal(signum: int, frame: object) -> None:
    """The first SIGINT/SIGTERM stops the benchmark; later ones are ignored, so that a
    second Ctrl-C (or the parent passing the signal on) cannot cut the clean-up short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(f"benchmark stopped by signal {signum}")


def install_cleanup() -> None:
    atexit.register(kill_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


@dataclass
class Reaped:
    returncode: int
    cpu_s: float  # user + system CPU of the process and its reaped children
    timed_out: bool = False


def spawn(args: Sequence[str], *, cwd: Path | None = None, stdout: Path | None = None,
          env: dict[str, str] | None = None, pipe_stdout: bool = False
          ) -> subprocess.Popen[bytes]:
    handle = open(stdout, "ab") if stdout is not None else None
    target = handle if handle is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            list(args), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe_stdout else target,
            stderr=target if pipe_stdout else subprocess.STDOUT,
            cwd=cwd, env=env, start_new_session=True,
        )
    finally:
        if handle is not None:
            handle.close()
    _LIVE.add(proc)
    return proc


def reap(proc: subprocess.Popen[bytes], *, block: bool) -> Reaped | None:
    """``wait4`` the process: its exit code and CPU seconds (None while it runs)."""
    if proc.returncode is not None and proc not in _LIVE:
        return Reaped(proc.returncode, 0.0)
    pid, status, usage = os.wait4(proc.pid, 0 if block else os.WNOHANG)
    if pid == 0:
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    _LIVE.discard(proc)
    return Reaped(proc.returncode, usage.ru_utime + usage.ru_stime)


def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL, grace_s: float = 5.0
         ) -> Reaped:
    """Signal the process group; SIGKILL after ``grace_s``; reap it."""
    if proc.returncode is None:
        _kill_group(proc, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            done = reap(proc, block=False)
            if done is not None:
                return done
            time.sleep(0.02)
        _kill_group(proc, signal.SIGKILL)
    done = reap(proc, block=True)
    assert done is not None
    return done


def run(args: Sequence[str], *, timeout_s: float, cwd: Path | None = None,
        stdout: Path | None = None, on_tick: Callable[[], None] | None = None,
        tick_s: float = 5.0) -> Reaped:
    """Run to completion, bounded by ``timeout_s`` (then SIGKILL); ``on_tick`` every
    ``tick_s`` seconds while it runs."""
    proc = spawn(args, cwd=cwd, stdout=stdout)
    deadline = time.monotonic() + timeout_s
    next_tick = time.monotonic() + tick_s
    try:
        while True:
            done = reap(proc, block=False)
            if done is not None:
                return done
            now = time.monotonic()
            if now > deadline:
                logger.warning("%s ran past %.0f s: killed", Path(args[0]).name, timeout_s)
                done = kill(proc, grace_s=0)
                done.timed_out = True
                return done
            if on_tick is not None and now >= next_tick:
                next_tick = now + tick_s
                on_tick()
            time.sleep(0.02)
    finally:
        if proc.returncode is None:
            kill(proc, grace_s=0)
