"""A restart of outguard never cuts a call: outguard runs as a process of its own, is
stopped (SIGTERM) or killed (SIGKILL) while a call it let through is connected, and is
started again on the same store. In every mode (ARI continue, ARI bridge, FastAGI with
AMI) the call goes on to its natural end, its call-log row closes with the real cause,
and while it is up it still holds its concurrency slot (the policy's cap of one call per
account refuses a second call with 486).

Neither phone hangs up by itself: the callee hangs up when the test says so, after the
restart. (A call that ended after a fixed hold raced the restart, which takes seconds
under CPU load: the call had ended before the new process looked, 1 run in ~10.)"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from outguard import sandbox
from outguard.testing import sipp
from tests.integration.conftest import callee_hangs_up, carrier_legs
from tests.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POLICY = Path(__file__).parent / "policies" / "screening.toml"
ALLOWED = "13800138000"


@dataclass(frozen=True)
class Mode:
    agent: str  # the SIPp agent's From user: picks the sandbox dialplan's variant
    parts: str  # outguard serve --only
    adapter: str


MODES = {
    "continue": Mode("agent", "ari,api", "ari"),
    "bridge": Mode("agent-bridge", "ari,api", "ari"),
    "agi": Mode("agent-agi", "agi,ami,api", "agi"),
}


class OutguardProcess:
    """``outguard serve`` in its own process, on one settings file and store."""

    def __init__(self, pbx: sandbox.Sandbox, workdir: Path, parts: str) -> None:
        inst = pbx.inst
        self.db = workdir / "outguard.db"
        self.api_port = inst.ports.http + 1000
        self.parts = parts
        self.settings = workdir / "outguard.toml"
        self.settings.write_text(
            f'store = "{self.db}"\npolicy = "{POLICY}"\ndefault_tenant = "t1"\n'
            f'[ari]\nurl = "{inst.ari_url}"\nuser = "{inst.ari_user}"\napp = "{inst.app}"\n'
            f'[agi]\nport = {inst.ports.agi}\n'
            f'[ami]\nport = {inst.ports.ami}\nuser = "{inst.ami_user}"\n'
            f'[api]\nport = {self.api_port}\n', encoding="utf-8")
        self.env = {**os.environ, "OUTGUARD_ARI_PASSWORD": inst.ari_password,
                    "OUTGUARD_AMI_PASSWORD": inst.ami_password}
        self.log = workdir / "outguard.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from outguard.cli import main; main()", "-v", "serve",
                 "-c", str(self.settings), "--only", self.parts],
                env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # readiness: /health says every part connected
            if self.proc.poll() is not None:
                raise AssertionError(f"outguard exited at start: {self.output()}")
            health = self.health()
            if health is not None and health["status"] != "starting" and all(
                    health["connected"].values()):
                return
            time.sleep(0.05)
        self.stop(signal.SIGKILL)  # never left running: it would screen the next tests' calls
        raise AssertionError(f"outguard was not ready within {timeout} s: {self.output()}")

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/health",
                                        timeout=1) as reply:
                body: dict[str, Any] = json.loads(reply.read())
                return body
        except OSError:
            return None

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"outguard did not stop on {sig.name}: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    def rows(self) -> list[dict[str, Any]]:
        """The call log as it is on disk (read-only, beside the running writer)."""
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY at")]
        except sqlite3.OperationalError:  # not created yet
            return []
        finally:
            conn.close()


def forget_answer(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute("UPDATE calls SET answered_at = NULL")
        conn.commit()
    finally:
        conn.close()


def carrier_channel(pbx: sandbox.Sandbox) -> dict[str, Any] | None:
    return next(iter(carrier_legs(pbx)), None)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
@pytest.mark.parametrize("mode", list(MODES))
async def test_a_restart_with_a_connected_call_cuts_nothing_and_closes_its_row(
    clean_pbx: sandbox.Sandbox, tmp_path: Path, mode: str, sig: signal.Signals,
) -> None:
    m = MODES[mode]
    inst = clean_pbx.inst
    og = OutguardProcess(clean_pbx, tmp_path, m.parts)
    og.start()
    try:
        with sipp.Carrier(inst, callee_hangs_up=False, limit_s=120):
            placed = time.monotonic()
            first = asyncio.ensure_future(asyncio.to_thread(
                sipp.place_calls, inst, ALLOWED, from_user=m.agent, account="a-restart",
                timeout_s=90))
            # connected: the carrier leg is up (a continue-mode or FastAGI call's answer
            # time reaches outguard only with its end, in the hangup handler's event)
            await eventually(lambda: og.rows() and (carrier_channel(clean_pbx) or {}).get(
                "state") == "Up", "the call to be answered")
            if mode == "bridge":  # outguard bridges the callee itself and logs the answer at
                # once; a kill -9 before that row update reached the store would lose the
                # answer time (it was never acknowledged), so under load wait for it too
                await eventually(lambda: any(r["answered_at"] for r in og.rows()),
                               "the answer in the call log")
            answered = time.monotonic()
            og.stop(sig)  # outguard goes away with the call connected
            if sig is signal.SIGKILL and mode == "continue":
                # the worst a kill -9 leaves (seen under load): the answer, logged in a
                # batch after the channel came up, never reached the store; the next
                # process must not take the time it first sees the channel up for it
                forget_answer(og.db)
            og.start()
            health = og.health()
            assert health is not None and health["live_calls"] == 1, og.output()  # holds its slot

            second = await asyncio.to_thread(
                sipp.place_calls, inst, ALLOWED, from_user=m.agent, account="a-restart",
                port=inst.ports.agent + 5, timeout_s=20)
            assert second.finals() == [486]  # the cap of one call still holds

            carrier = carrier_channel(clean_pbx)  # the call is still up: nothing cut it ...
            assert carrier is not None and carrier["state"] == "Up", og.output()
            held = time.monotonic() - answered  # at least this long: answered before
            callee_hangs_up(clean_pbx, carrier)  # ... until the callee hangs up, now
            run = await first
            ended = time.monotonic() - placed  # at most this long: placed after `placed`
        assert run.finals() == [200]
        assert run.only.ended_by == "remote"  # the callee's hangup reached the agent
        await eventually(lambda: (og.health() or {}).get("live_calls") == 0,
                       "the call to be released")
        await eventually(lambda: all(r["ended_at"] for r in og.rows()), "every row closed")
        rows = og.rows()
        allowed = [r for r in rows if r["verdict"] == "allow"]
        assert len(allowed) == 1 and allowed[0]["adapter"] == m.adapter
        row = allowed[0]
        assert row["cause"] == 16 and row["end_note"] is None, row
        assert row["answered_at"] is not None
        assert held - 0.5 <= row["duration"] <= ended + 0.5, (  # rounding
            held, ended, row, og.output())
        assert [(r["verdict"], r["reason"]) for r in rows if r["verdict"] == "block"] == [
            ("block", "concurrency_cap")]
    finally:
        og.stop(signal.SIGKILL)
