"""Run the SIPp scenarios in ``tests/sipp/`` against a sandbox PBX and read their results.

The agent phone (a SIPp UAC) places calls through the PBX; the carrier (a SIPp UAS)
answers them. Both log one line per event through ``-log_file``; this module parses those
lines into per-call results with SIPp's millisecond clock.

Every run is bounded: a call count, a global ``-timeout`` and a hard wall-clock limit, and
every process is killed with SIGKILL on the way out (a UAS sent SIGTERM can linger and keep
its port).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from outguard.errors import OutguardError
from outguard.resources import resource_dir
from outguard.sandbox import Instance

logger = logging.getLogger(__name__)


REASONS = {
    200: "OK", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout",
    480: "Temporarily Unavailable", 484: "Address Incomplete", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 500: "Server Internal Error",
    503: "Service Unavailable", 603: "Decline",
}


class SippError(OutguardError):
    """SIPp is missing, or a run could not be started or read."""


def sipp_binary() -> str:
    found = shutil.which("sipp")
    if not found:
        raise SippError("SIPp is missing: apt-get install -y sip-tester")
    return found


@dataclass
class CallResult:
    """What the agent phone saw of one call (times in SIPp's milliseconds)."""

    number: int
    sent_ms: int | None = None
    provisional: list[tuple[int, int]] = field(default_factory=list)  # (code, ms)
    final: int | None = None
    final_ms: int | None = None
    ended_by: str | None = None  # "local" (agent sent BYE) or "remote" (got BYE)
    ended_ms: int | None = None

    @property
    def post_dial_delay_ms(self) -> int | None:
        """INVITE sent -> first 180/183/200 received."""
        firsts = [ms for _, ms in self.provisional]
        if self.final_ms is not None:
            firsts.append(self.final_ms)
        if self.sent_ms is None or not firsts:
            return None
        return min(firsts) - self.sent_ms


@dataclass
class AgentRun:
    returncode: int
    calls: dict[int, CallResult]
    output: str

    def finals(self) -> list[int | None]:
        return [self.calls[n].final for n in sorted(self.calls)]

    @property
    def only(self) -> CallResult:
        if len(self.calls) != 1:
            raise SippError(f"expected one call, SIPp reported {len(self.calls)}: {self.output}")
        return next(iter(self.calls.values()))


def _parse_log(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return [line.split() for line in text.splitlines() if line.strip()]


def parse_agent_log(path: Path) -> dict[int, CallResult]:
    calls: dict[int, CallResult] = {}
    for words in _parse_log(path):
        if len(words) < 4 or not words[1].isdigit():
            continue
        kind, number, value, tick = words[0], int(words[1]), words[2], words[3]
        call = calls.setdefault(number, CallResult(number))
        ms = int(tick) if tick.isdigit() else None
        if kind == "SENT":
            call.sent_ms = ms
        elif kind == "PROV" and ms is not None:
            call.provisional.append((int(value), ms))
        elif kind == "FINAL":
            call.final, call.final_ms = int(value), ms
        elif kind == "END":
            call.ended_by, call.ended_ms = value, ms
    return calls


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        logger.warning("SIPp pid %d did not exit after SIGKILL", proc.pid)


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def udp_bound(port: int) -> bool:
    """Whether some socket is bound to UDP ``port`` on 127.0.0.1 or every address, as the
    kernel lists them (/proc/net/udp). Asking by binding a socket of one's own
    (``_port_taken``) takes the port for that moment: a SIPp starting then cannot bind it
    and exits at once."""
    wanted = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    with open("/proc/net/udp", encoding="ascii") as table:
        next(table)  # the header
        return any(line.split()[1] in wanted for line in table)


def wait_port_free(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while _port_taken(port):
        if time.monotonic() > deadline:
            raise SippError(f"UDP port {port} is still taken")
        time.sleep(0.05)


# SIPp's media and control ports, relative to its SIP port. Not +2000/+1000: sandboxes run
# side by side with port offsets 1000 apart, and one's SIPp control port then landed on the
# other's carrier SIP port (SIPp exits at once when its control port is taken).
MEDIA_SHIFT = 2041
CONTROL_SHIFT = 1037


def _common_args(scenario: str, port: int, media_port: int, control_port: int) -> list[str]:
    return [
        sipp_binary(), "-sf", str(resource_dir("sipp") / scenario),
        "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", str(port), "-mp", str(media_port),
        "-cp", str(control_port), "-nostdin", "-trace_logs",
    ]


class Carrier:
    """A SIPp UAS answering on the sandbox's carrier port, for a ``with`` block."""

    def __init__(
        self, inst: Instance, hold_ms: int = 300, callee_hangs_up: bool = True,
        limit_s: float = 300.0, busy: bool = False,
    ) -> None:
        self.inst = inst
        self.hold_ms = hold_ms
        if busy:
            self.scenario = "carrier_busy.xml"
        else:
            self.scenario = "carrier_answer.xml" if callee_hangs_up else "carrier_answer_wait.xml"
        self.limit_s = limit_s
        self._dir = Path(tempfile.mkdtemp(prefix="og-carrier-"))
        self.log = self._dir / "carrier.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Carrier:
        port = self.inst.ports.carrier
        wait_port_free(port)
        args = _common_args(self.scenario, port, port + MEDIA_SHIFT, port + CONTROL_SHIFT)
        args += ["-d", str(self.hold_ms), "-log_file", str(self.log),
                 "-timeout", f"{int(self.limit_s)}s"]
        out = open(self._dir / "stdout", "wb")
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=self._dir, start_new_session=True,
        )
        out.close()
        # ready once its SIP port is bound: from then on an INVITE waits in its socket
        # (a fixed pause was too short under CPU load: the first INVITE met a closed port).
        # Read from the kernel's table, never by binding the port to see: SIPp binding it
        # in that moment exits at once ("carrier SIPp exited at once", under load)
        deadline = time.monotonic() + 30
        while not udp_bound(port):
            if self.proc.poll() is not None:
                raise SippError(f"carrier SIPp exited at once: {self.output()}")
            if time.monotonic() > deadline:
                _kill_group(self.proc)
                raise SippError(f"carrier SIPp did not bind UDP port {port} in 30 s")
            time.sleep(0.01)
        return self

    def output(self) -> str:
        return (self._dir / "stdout").read_text(encoding="utf-8", errors="replace")[-2000:]

    def invites(self) -> list[str]:
        """The dialed user part of each call the carrier received, in order.

        One entry per SIP dialog (Call-ID): an INVITE retransmitted by a slow PBX that
        reaches SIPp after it closed the call would otherwise count as a second call.
        """
        seen: set[str] = set()
        users = []
        for w in _parse_log(self.log):
            if w[0] != "INVITE" or len(w) < 4:
                continue
            dialog = w[5] if len(w) >= 6 else w[1]
            if dialog not in seen:
                seen.add(dialog)
                users.append(w[2])
        return users

    def ended(self) -> list[tuple[int, str]]:
        """(call number, "local" / "remote": who hung up) of each call whose scenario is
        done, as far as the log is written (a line being written is left for later)."""
        return [(int(w[1]), w[2]) for w in _parse_log(self.log)
                if w[0] == "END" and len(w) >= 3 and w[1].isdigit()]

    def wait_ended(self, calls: int, timeout_s: float = 60.0) -> list[tuple[int, str]]:
        """``ended()`` once ``calls`` calls are in it, or what it holds at the deadline.

        The carrier logs a call's end when its own scenario completes, which may come
        after the agent's run returned: Asterisk answers one leg's BYE and sends the
        other its own, each on its own time, so right after ``place_calls`` the carrier's
        end may not be written yet (more so on a loaded machine)."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = self.ended()
            if len(got) >= calls or time.monotonic() >= deadline:
                return got
            time.sleep(0.01)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None:
            _kill_group(self.proc)
        shutil.rmtree(self._dir, ignore_errors=True)


def place_calls(
    inst: Instance,
    number: str,
    *,
    count: int = 1,
    rate: float = 10.0,
    from_user: str = "agent",
    account: str = "",
    tenant: str = "",
    fail_mode: str = "",
    purpose: str = "",
    campaign: str = "",
    caller_id: str = "01088886666",
    optout: bool = False,
    agent_hangs_up_after_ms: int | None = None,
    timeout_s: float = 30.0,
    port: int | None = None,
) -> AgentRun:
    """Place ``count`` calls to ``number`` from the agent phone and wait for all of them.

    With ``agent_hangs_up_after_ms`` the agent sends BYE that long after the answer;
    otherwise it waits for the far end to hang up. ``port`` lets two agents run at once
    (their control and media ports are derived from it). With ``optout`` the sandbox's
    dialplan runs ``[outguard-optout]`` on the answered callee leg: the callee opts out.
    """
    port = port or inst.ports.agent
    wait_port_free(port)
    scenario = "agent_call.xml" if agent_hangs_up_after_ms is None else "agent_call_hangup.xml"
    with tempfile.TemporaryDirectory(prefix="og-agent-") as tmp:
        log = Path(tmp) / "agent.log"
        args = _common_args(scenario, port, port + MEDIA_SHIFT, port + CONTROL_SHIFT)
        args += [
            f"127.0.0.1:{inst.ports.sip}", "-s", number, "-m", str(count),
            "-r", f"{rate:g}", "-l", str(max(3, int(rate * 3))),
            "-timeout", f"{max(1, int(timeout_s))}s", "-log_file", str(log),
            "-key", "from_user", from_user, "-key", "account", account,
            "-key", "tenant", tenant, "-key", "fail_mode", fail_mode,
            "-key", "purpose", purpose, "-key", "campaign", campaign,
            "-key", "caller_id", caller_id,
            "-key", "optout", "yes" if optout else "",
            "-d", str(agent_hangs_up_after_ms or 0),
        ]
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=tmp, start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout_s + 10)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, _ = proc.communicate()  # reap it and close its pipe
        finally:
            _kill_group(proc)
        calls = parse_agent_log(log)
        text = out.decode("utf-8", errors="replace")[-3000:]
        return AgentRun(proc.returncode if proc.returncode is not None else -9, calls, text)
