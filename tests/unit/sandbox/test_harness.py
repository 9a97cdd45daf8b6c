"""The test harness itself: the SIPp harness (outguard.testing.sipp) never races the SIPp
it starts (once the carrier SIPp is started, the harness only reads whether its port is
bound, never binds it itself: a SIPp that found its port held by the harness's probe for
that moment exited at once, "carrier SIPp exited at once" under load); an outguard a test
left running is recognised."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from outguard.sandbox import Instance, Ports
from outguard.testing import sipp

# binds the SIP port it is given (-p), as SIPp does, and waits to be killed
FAKE_SIPP = """\
import socket, sys, time
port = int(sys.argv[sys.argv.index("-p") + 1])
time.sleep(0.2)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", port))
time.sleep(60)
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_carrier_is_waited_for_without_binding_its_port(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "sipp"
    fake.write_text(f"#!{sys.executable}\n{FAKE_SIPP}", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setattr(sipp, "sipp_binary", lambda: str(fake))
    port = free_udp_port()
    started = False
    binds_after_start: list[Any] = []
    real_popen, real_bind = subprocess.Popen, socket.socket.bind

    def popen(*args: Any, **kwargs: Any) -> Any:
        nonlocal started
        started = True
        return real_popen(*args, **kwargs)

    def bind(sock: socket.socket, address: Any) -> None:
        if started and isinstance(address, tuple) and address[1] == port:
            binds_after_start.append(address)
        real_bind(sock, address)

    monkeypatch.setattr(sipp.subprocess, "Popen", popen)
    monkeypatch.setattr(socket.socket, "bind", bind)
    inst = Instance(name="harness", ports=Ports(carrier=port))
    with sipp.Carrier(inst) as carrier:
        assert carrier.proc is not None and carrier.proc.poll() is None
        assert sipp.udp_bound(port)
    assert binds_after_start == []


def test_udp_bound_reads_the_kernels_table() -> None:
    port = free_udp_port()
    assert not sipp.udp_bound(port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))
        assert sipp.udp_bound(port)
    assert not sipp.udp_bound(port)


async def test_an_outguard_left_running_is_recognised_by_its_tasks() -> None:
    """What tests/leaks.py looks for after every integration test:
    the ARI app's run task of an outguard nobody stopped (here: one that cannot connect,
    and keeps trying, as a leaked one does)."""
    from ari_app.app import StasisApp
    from ari_app.client import AriClient
    from ari_app.settings import CallSettings
    from tests.leaks import outguard_task

    client = AriClient(f"http://127.0.0.1:{free_tcp_port()}/ari", "u", "p", "outguard")
    await client.open()
    try:
        screener = SimpleNamespace(reserves=False)  # embedded mode; never asked to screen
        app = StasisApp(client, screener, CallSettings())  # type: ignore[arg-type]
        task = asyncio.get_running_loop().create_task(app.run())
        try:
            await asyncio.sleep(0)
            assert outguard_task(task) == "StasisApp.run"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert outguard_task(task) is None
    finally:
        await client.close()


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_carriers_end_logged_after_the_agents_run_returned_is_waited_for(
    tmp_path: Path,
) -> None:
    """The carrier logs a call's end when its own scenario completes, which may trail the
    agent's run (Asterisk sends each leg its BYE on its own time): ``wait_ended`` waits for
    it (test_sandbox_call's agent-hangup test read [] once in a CI run under load); a line
    still being written is not read; past the deadline, what is there."""
    import threading

    carrier = sipp.Carrier(Instance("t", Ports()))
    carrier.log = tmp_path / "carrier.log"
    carrier.log.write_text("INVITE 1 +8613800138000 5 x c1\nEND")  # END being written
    assert carrier.ended() == []
    late = threading.Timer(0.3, lambda: carrier.log.write_text(
        "INVITE 1 +8613800138000 5 x c1\nEND 1 remote 912\n"))
    late.start()
    try:
        assert carrier.wait_ended(1, timeout_s=30) == [(1, "remote")]
        assert carrier.wait_ended(2, timeout_s=0.05) == [(1, "remote")]
    finally:
        late.cancel()
        carrier.__exit__(None, None, None)  # its work directory


def test_the_pbxs_channels_are_waited_for_until_asterisk_destroyed_them() -> None:
    from outguard.sandbox import Sandbox

    counts = iter([2, 1, 0, 5])
    pbx = Sandbox.__new__(Sandbox)
    pbx.channels = lambda: next(counts)  # type: ignore[method-assign]
    assert pbx.wait_channels(0, timeout_s=30) == 0
    pbx.channels = lambda: 1  # type: ignore[method-assign]
    assert pbx.wait_channels(0, timeout_s=0.05) == 1
