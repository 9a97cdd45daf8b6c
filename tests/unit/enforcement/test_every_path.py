"""Every write path has the same effect on the running service: complaints and marks added
through the CLI (another process, its own store connection), a CSV import or the API
reach the service's figures and triggers; suspensions and lifts made by the CLI reach the
call path; at start the triggers run on the rebuilt figures before the first call; rule
hit counts survive a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from outguard.callfacts import ChannelFacts
from outguard.cli import cli
from outguard.config import Settings
from outguard.enforcement import Enforcer
from outguard.server import ENFORCER, SCREENER, Parts, build_app
from outguard.service import Decision, Screener
from outguard.store import SQLiteStore
from rules.model import PartyKind, PartyState
from tests.unit.enforcement.conftest import ENFORCEMENT, RULES

TRIGGERS = """
evaluate_every_ms = 20

[enforcement.triggers.two_complaints_stop_the_tenant]
metric = "complaints"
scope = "tenant"
window = "30d"
at_least = 2
action = "suspend"
duration = "7d"

[enforcement.triggers.two_marks_stop_the_caller_id]
metric = "marks"
scope = "caller_id"
window = "7d"
at_least = 2
action = "suspend"
"""

CALLER = "13800000001"
CALLEES = ("13900000001", "13900000002")


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """(settings file, store file) as a running service and the CLI both read them."""
    policy = tmp_path / "policy.toml"
    policy.write_text(RULES + ENFORCEMENT + TRIGGERS, encoding="utf-8")
    db = tmp_path / "outguard.db"
    settings = tmp_path / "outguard.toml"
    settings.write_text(f'store = "{db}"\npolicy = "{policy}"\ndefault_tenant = "t1"\n',
                        encoding="utf-8")
    with SQLiteStore(db) as store:
        store.create_tenant("t1", "Tenant One")
        store.create_account("a1", "t1")
    return settings, db


async def run_cli(settings: Path, *args: str) -> Result:
    """The CLI as its own program: its own store connection and event loop (a thread)."""
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, [*args[:2], "-c", str(settings), *args[2:]])
    assert result.exit_code == 0, result.output
    return result


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Service:
    def __init__(self, app: web.Application) -> None:
        self.app = app

    @property
    def screener(self) -> Screener:
        return self.app[SCREENER]

    @property
    def enforcer(self) -> Enforcer:
        return self.app[ENFORCER]

    def state(self, kind: PartyKind, key: str) -> PartyState | None:
        snap = self.screener.snapshot
        party = snap.party(kind, key) if snap is not None else None
        return None if party is None else party.state

    def dial(self, dialed: str, caller_id: str = CALLER) -> Decision:
        facts = ChannelFacts(adapter="ari", channel_id="c", channel_name="PJSIP/agent-1",
                             dialed=dialed, caller_id=caller_id, account="a1", tenant="t1")
        decision = self.screener.screen(facts)
        if decision.allowed:
            self.screener.answered(decision.id)
            self.screener.ended(decision.id, cause=16)
        return decision


async def start_service(settings_file: Path) -> web.AppRunner:
    """The service as ``outguard serve`` wires it (store, screener, enforcer), no PBX."""
    from outguard import config

    settings: Settings = config.load(settings_file, env={})
    runner = web.AppRunner(build_app(settings, Parts(ari=False, agi=False, ami=False,
                                                     api=False)))
    await runner.setup()
    runner.app[ENFORCER].poll_s = 0.05
    return runner


@pytest.fixture
async def service(files: tuple[Path, Path]) -> AsyncIterator[Service]:
    runner = await start_service(files[0])
    try:
        yield Service(runner.app)
    finally:
        await runner.cleanup()


async def _cli_add(settings: Path, service: Service) -> None:
    for callee in CALLEES:
        await run_cli(settings, "complaints", "add", callee, "--caller-id", CALLER,
                      "--source", "12321")


async def _cli_import(settings: Path, service: Service) -> None:
    csv = settings.parent / "12321-weekly.csv"
    csv.write_text("callee,caller_id,category,source\n"
                   + "".join(f"{c},{CALLER},骚扰,12321\n" for c in CALLEES), encoding="utf-8")
    await run_cli(settings, "complaints", "import", str(csv))


async def _api_add(settings: Path, service: Service) -> None:
    for callee in CALLEES:  # what POST /api/complaints and the dashboard call
        await service.enforcer.add_complaint(callee, CALLER, category="harassment",
                                             source="12321", actor="ops")


@pytest.mark.parametrize("path", [_cli_add, _cli_import, _api_add],
                         ids=["cli-add", "cli-import-csv", "api"])
async def test_two_complaints_stop_the_tenant_whichever_path_they_came_by(
    files: tuple[Path, Path], service: Service, path: Callable[..., object],
) -> None:
    for callee in CALLEES:
        assert service.dial(callee).allowed
    assert service.dial("13900000009").allowed
    await path(files[0], service)  # type: ignore[misc]
    await until(lambda: service.state(PartyKind.TENANT, "t1") is PartyState.SUSPENDED,
                "the tenant suspended in the call path's snapshot")
    figures = service.enforcer.risk("tenant", "t1", window_s=86400)
    assert figures.complaints == 2
    assert service.enforcer.risk("account", "a1").complaints == 2  # by (caller, callee)
    blocked = service.dial("13900000009")
    assert (blocked.allowed, blocked.verdict.reason) == (False, "tenant_suspended")


async def test_marks_added_by_the_cli_flag_the_caller_id(
    files: tuple[Path, Path], service: Service,
) -> None:
    for callee in CALLEES:
        await run_cli(files[0], "complaints", "add", callee, "--caller-id", CALLER, "--mark")
    await until(lambda: service.state(PartyKind.CALLER_ID, f"+86{CALLER}")
                is PartyState.SUSPENDED, "the caller ID suspended")
    assert service.enforcer.risk("caller_id", CALLER).marks == 2
    assert not service.dial("13900000009").allowed


async def test_a_complaint_is_counted_once_in_the_process_that_added_it(
    service: Service,
) -> None:
    assert service.dial(CALLEES[0]).allowed
    await service.enforcer.add_complaint(CALLEES[0], CALLER, category="fraud", source="12321",
                                         actor="ops")
    await service.enforcer._pull_complaints()  # the feed finds nothing new
    assert service.enforcer.risk("tenant", "t1").complaints == 1
    assert service.enforcer.risk("account", "a1").complaints == 1


async def test_suspensions_and_lifts_by_the_cli_reach_the_call_path(
    files: tuple[Path, Path], service: Service,
) -> None:
    await run_cli(files[0], "suspend", "account", "a1", "--reason", "retraining", "--for", "1h")
    await until(lambda: service.state(PartyKind.ACCOUNT, "a1") is PartyState.SUSPENDED,
                "a1 suspended in the snapshot")
    assert service.dial("13900000009").verdict.reason == "account_suspended"
    await run_cli(files[0], "lift", "account", "a1", "--reason", "retrained")
    await until(lambda: service.state(PartyKind.ACCOUNT, "a1") is PartyState.ACTIVE,
                "a1 active again")
    assert service.dial("13900000009").allowed


async def test_at_start_the_triggers_run_before_the_first_call(
    files: tuple[Path, Path],
) -> None:
    settings, db = files
    # complaints recorded while the service was down (the CLI needs no running service)
    for callee in CALLEES:
        await run_cli(settings, "complaints", "add", callee, "--caller-id", CALLER,
                      "--source", "12321", "--tenant", "t1")
    runner = await start_service(settings)
    try:
        service = Service(runner.app)
        # no wait, no further call: the very first call is refused
        assert service.state(PartyKind.TENANT, "t1") is PartyState.SUSPENDED
        first = service.dial("13900000009")
        assert (first.allowed, first.verdict.reason) == (False, "tenant_suspended")
    finally:
        await runner.cleanup()


async def test_rule_hit_counts_survive_a_restart(files: tuple[Path, Path]) -> None:
    settings, db = files
    runner = await start_service(settings)
    try:
        service = Service(runner.app)
        await run_cli(settings, "suspend", "account", "a1", "--reason", "x", "--for", "1h")
        await until(lambda: service.state(PartyKind.ACCOUNT, "a1") is PartyState.SUSPENDED,
                    "a1 suspended")
        for _ in range(3):
            assert not service.dial("13900000009").allowed
        before = service.screener.hits.as_dict()
        assert before["party_status"]["block"] == 3
    finally:
        await runner.cleanup()
    runner = await start_service(settings)
    try:
        service = Service(runner.app)
        assert service.screener.hits.as_dict() == before
        service.dial("13900000009")
        assert service.screener.hits.get("party_status", "block") == 4
    finally:
        await runner.cleanup()
    with SQLiteStore(db) as store:  # saved when the service stopped
        assert store.load_rule_hits()[("party_status", "block")] == 4
