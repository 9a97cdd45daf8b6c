"""A running outguard (store, screener, ARI app and, as they land, the FastAGI server and
AMI listener) against the sandbox PBX, fresh for each test: its own SQLite file, so no
counters, lists or suspensions leak from one test into the next."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agi.ami import AmiClient
from agi.outcomes import AmiListener
from agi.server import FastAgiServer
from ari_app.app import StasisApp
from ari_app.settings import CallSettings
from outguard import sandbox
from outguard.config import AgiConfig, AmiConfig, ApiConfig, AriConfig, Settings
from outguard.enforcement import Enforcer
from outguard.server import AGI, AMI, ENFORCER, SCREENER, STASIS, STORE, Parts, build_app
from outguard.service import Screener
from outguard.store.aio import AsyncStore
from outguard.store.base import LoggedCall
from outguard.testing import sipp
from outguard.testing.pbxes import second_instance
from tests import leaks
from tests.conftest import TEST_INSTANCE, TEST_PORT_OFFSET
from tests.waiting import DEADLINE_S, eventually

POLICIES = Path(__file__).parent / "policies"


@dataclass
class Running:
    app: web.Application
    settings: Settings
    pbx: sandbox.Sandbox

    @property
    def store(self) -> AsyncStore:
        return self.app[STORE]

    @property
    def screener(self) -> Screener:
        return self.app[SCREENER]

    @property
    def stasis(self) -> StasisApp:
        return self.app[STASIS]

    @property
    def enforcer(self) -> Enforcer:
        return self.app[ENFORCER]

    @property
    def agi(self) -> FastAgiServer:
        return self.app[AGI]

    @property
    def ami(self) -> AmiListener:
        return self.app[AMI]

    async def call(self, number: str, **kwargs: Any) -> sipp.AgentRun:
        """Place calls from the SIPp agent without blocking the event loop."""
        return await asyncio.to_thread(sipp.place_calls, self.pbx.inst, number, **kwargs)

    async def calls_in_turn(self, number: str, count: int, *, account: str,
                            **kwargs: Any) -> list[sipp.CallResult]:
        """Place ``count`` calls from ``account`` one after the other, each once outguard
        has released the previous one's slot. (The test policy lets an account have one
        call at a time; SIPp placing calls at a rate would race outguard's release of the
        slot, which follows the hangup, and meet the concurrency cap under CPU load.)"""
        results = []
        for _ in range(count):
            run = await self.call(number, account=account, **kwargs)
            results.append(run.only)
            await self.released(account)
        return results

    async def released(self, account: str) -> None:
        """Wait until ``account`` has no live call in outguard."""
        await eventually(lambda: not self.screener.live.concurrent("account", account),
                         f"{account}'s slot released", interval=0.01)

    async def listed(self, list_name: str, kind: str, *numbers: str) -> None:
        """Create a list with these numbers and rebuild the snapshot now."""
        await self.store.create_list(list_name, kind)
        await self.store.add_entries(list_name, list(numbers))
        await self.screener.rebuild()

    async def logged(self) -> list[LoggedCall]:
        """Every call-log row, once the calls have settled."""
        await self.settle()
        return list(await self.store.run(lambda: list(self.store.store.iter_calls())))

    async def settle(self, timeout: float = DEADLINE_S) -> None:
        """Wait until no call is live and every call-log row is written."""
        await eventually(lambda: not self.screener.live_calls(), "no live call left",
                         timeout=timeout, interval=0.02)
        await self.store.flush_async()


def ari(pbx: sandbox.Sandbox, method: str, path: str) -> Any:
    """One ARI request as the test (not outguard) makes it; the decoded body."""
    status, body = sandbox.ari_request(pbx.inst, method, path, timeout=10)
    assert status < 300, (method, path, status, body)
    return json.loads(body) if body else None


def carrier_legs(pbx: sandbox.Sandbox) -> list[dict[str, Any]]:
    """The channels to the carrier SIPp, as ARI lists them."""
    return [c for c in ari(pbx, "GET", "/channels") if c["name"].startswith("PJSIP/carrier-")]


def callee_hangs_up(pbx: sandbox.Sandbox, leg: dict[str, Any]) -> None:
    """End a call as the callee would (normal clearing, Q.850 16), when the test says so:
    a call that ends by itself after a fixed hold races whatever the test does meanwhile."""
    ari(pbx, "DELETE", f"/channels/{leg['id']}?reason_code=16")


@pytest.fixture(scope="module")
def pbx_b(pbx: sandbox.Sandbox) -> Iterator[sandbox.Sandbox]:
    """A second sandbox Asterisk, for the modules that need two PBXes (started once per
    module, stopped after it)."""
    box = sandbox.Sandbox(second_instance(f"{TEST_INSTANCE}-b", TEST_PORT_OFFSET))
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture(autouse=True)
async def _no_outguard_outlives_its_test() -> AsyncIterator[None]:
    """The test that leaves an outguard running fails here, and what it left is stopped
    (tests/leaks.py says why)."""
    yield
    left = await leaks.stop_what_was_left()
    assert not left, f"the test left an outguard running: {left}"


def settings_for(pbx: sandbox.Sandbox, db: Path, **calls: Any) -> Settings:
    inst = pbx.inst
    return Settings(
        store=str(db),
        policy=str(POLICIES / "screening.toml"),
        default_tenant="t1",
        ari=AriConfig(url=inst.ari_url, user=inst.ari_user, app=inst.app),
        agi=AgiConfig(port=inst.ports.agi),
        ami=AmiConfig(port=inst.ports.ami, user=inst.ami_user),
        api=ApiConfig(port=inst.ports.http + 1000),
        calls=replace(CallSettings(), **calls),
    )


async def start_outguard(
    pbx: sandbox.Sandbox, settings: Settings, parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> web.AppRunner:
    monkeypatch.setenv("OUTGUARD_ARI_PASSWORD", pbx.inst.ari_password)
    monkeypatch.setenv("OUTGUARD_AMI_PASSWORD", pbx.inst.ami_password)
    runner = leaks.BoundedRunner(build_app(settings, parts))
    await runner.setup()
    leaks.STARTED.append(runner)
    app = runner.app
    try:
        if STASIS in app:
            await eventually(lambda: app[STASIS].connected, "outguard connected to ARI")
        if AMI in app:
            await eventually(lambda: app[AMI].connected, "outguard connected to AMI")
    except BaseException:
        await runner.cleanup()
        raise
    return runner


@contextlib.asynccontextmanager
async def serving(pbx: sandbox.Sandbox, tmp_path: Path, parts: Parts,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    """outguard with these parts, on a store of its own, for the length of the block."""
    settings = settings_for(pbx, tmp_path / "outguard.db")
    runner = await start_outguard(pbx, settings, parts, monkeypatch)
    try:
        yield Running(runner.app, settings, pbx)
    finally:
        await runner.cleanup()


@pytest.fixture
async def outguard(
    clean_pbx: sandbox.Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Running]:
    """outguard with the ARI app and the AMI listener (which follows continue-mode calls
    to their end), as ``outguard serve`` runs them."""
    async with serving(clean_pbx, tmp_path, Parts(agi=False), monkeypatch) as og:
        yield og


@pytest.fixture
async def outguard_all(
    clean_pbx: sandbox.Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Running]:
    """outguard with every adapter (ARI, FastAGI, AMI; no API)."""
    async with serving(clean_pbx, tmp_path, Parts(api=False), monkeypatch) as og:
        yield og


@pytest.fixture
async def outguard_agi(
    clean_pbx: sandbox.Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Running]:
    """outguard with the FastAGI server and the AMI listener (no ARI): for the
    ``agent-agi`` phone, which enters the dialplan's [outguard-agi] context."""
    async with serving(clean_pbx, tmp_path, Parts(ari=False, api=False), monkeypatch) as og:
        yield og


class ChannelVariables:
    """What the CDR of each channel will see: every OUTGUARD_* variable set on a channel,
    last value wins, collected from AMI VarSet events on a connection of the test's own
    (whoever set it: ARI, FastAGI or the dialplan)."""

    def __init__(self, pbx: sandbox.Sandbox) -> None:
        self.by_channel: dict[str, dict[str, str]] = {}
        inst = pbx.inst
        self.client = AmiClient(
            "127.0.0.1", inst.ports.ami, inst.ami_user, inst.ami_password, events="dialplan",
            filters=(r"Variable: OUTGUARD_",), on_event=self._on_event,
        )
        self._task: asyncio.Task[None] | None = None

    def _on_event(self, event: Any) -> None:
        if event.get("Event") == "VarSet":
            uid = str(event.get("Uniqueid", ""))
            self.by_channel.setdefault(uid, {})[str(event.get("Variable"))] = str(
                event.get("Value", ""))

    async def __aenter__(self) -> ChannelVariables:
        self._task = asyncio.get_running_loop().create_task(self.client.run())
        await eventually(lambda: self.client.connected, "the test's AMI connection")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.close()

    async def verdict(self, verdict: str) -> dict[str, str]:
        """Wait until a channel has ``OUTGUARD_VERDICT=verdict`` (the events arrive over
        the test's own AMI connection, after the call's own); its variables."""
        return await eventually(
            lambda: next((v for v in self.by_channel.values()
                          if v.get("OUTGUARD_VERDICT") == verdict), None),
            f"a channel with OUTGUARD_VERDICT={verdict}", interval=0.01)

    def of(self, uniqueid: str) -> dict[str, str]:
        """The values, without the ones cleared to empty."""
        return {k: v for k, v in self.by_channel.get(uniqueid, {}).items() if v}


@pytest.fixture
async def outguard_consent(
    clean_pbx: sandbox.Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Running]:
    """outguard with ARI (continue mode) and the AMI listener (which hears the dialplan's
    opt-outs), screening with policies/consent.toml."""
    settings = replace(settings_for(clean_pbx, tmp_path / "outguard.db"),
                       policy=str(POLICIES / "consent.toml"))
    runner = await start_outguard(clean_pbx, settings, Parts(agi=False, api=False), monkeypatch)
    try:
        yield Running(runner.app, settings, clean_pbx)
    finally:
        await runner.cleanup()
