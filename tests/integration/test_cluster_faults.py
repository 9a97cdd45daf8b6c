"""Cluster mode's remaining faults, on the sandbox Asterisks, PostgreSQL and redis-server:
one PBX name is one Asterisk across the instances (a second Asterisk under a claimed name
is refused, one Asterisk on two instances needs a Stasis application each); a call that
went out unscreened (fail-open) holds its shared reservation; the call events of an
instance stopped (gracefully or by kill -9) while Redis was down, or hung before a failed
append noticed it, reach the other instance once it starts again."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import signal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from outguard import sandbox
from outguard.cluster.feed_debt import FeedMark
from outguard.config import Settings
from outguard.server import AMI, CLAIMS, SCREENER, STASIS, STORE, Parts, build_app, health
from outguard.testing import sipp
from tests import leaks
from tests.integration.conftest import Running, start_outguard
from tests.integration.test_cluster import (  # noqa: F401 - fixtures
    ClusterProcess,
    Shared,
    cluster_redis,
    cluster_settings,
    shared,
)
from tests.waiting import eventually

pytestmark = pytest.mark.integration


def named(settings: Settings, pbx: str, app: str | None = None) -> Settings:
    """``settings`` with its targets' PBX (and ARI application) renamed."""
    return dataclasses.replace(
        settings,
        ari=tuple(dataclasses.replace(t, pbx=pbx, app=app or t.app) for t in settings.ari),
        ami=tuple(dataclasses.replace(t, pbx=pbx) for t in settings.ami))


async def health_of(app: web.Application) -> dict[str, Any]:
    reply = await health(make_mocked_request("GET", "/health", app=app))
    assert isinstance(reply, web.Response) and reply.text is not None
    body: dict[str, Any] = json.loads(reply.text)
    return body


async def test_a_second_asterisk_under_a_claimed_pbx_name_is_refused_naming_both(
    clean_pbx: sandbox.Sandbox, pbx_b: sandbox.Sandbox, shared: Shared,  # noqa: F811
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    pbx_b.hangup_all()
    name = clean_pbx.inst.name
    one = cluster_settings(clean_pbx, shared, tmp_path / "spool-one")
    runner_one = await start_outguard(clean_pbx, one, Parts(agi=False), monkeypatch)
    # instance two reaches the other Asterisk (another entity id) under the same name
    two = named(cluster_settings(pbx_b, shared, tmp_path / "spool-two"), name)
    monkeypatch.setenv("OUTGUARD_ARI_PASSWORD", pbx_b.inst.ari_password)
    monkeypatch.setenv("OUTGUARD_AMI_PASSWORD", pbx_b.inst.ami_password)
    runner_two = leaks.BoundedRunner(build_app(two, Parts(agi=False)))
    try:
        with caplog.at_level(logging.ERROR, logger="outguard.pbx_claims"):
            await runner_two.setup()
            app = runner_two.app
            await eventually(lambda: set(app[CLAIMS].conflicts) == {(name, "ari"), (name, "ami")},
                             "both of instance two's targets refused")
        assert not app[STASIS].connected and not app[AMI].connected
        body = await health_of(app)
        assert body["status"] == "degraded"
        for part in (f"ari:{name}", f"ami:{name}"):
            why = body["errors"][part]
            for fragment in [f"pbx '{name}'", sandbox.entity_id(pbx_b.inst.name),
                             sandbox.entity_id(clean_pbx.inst.name), "not used"]:
                assert fragment in why
        assert app[CLAIMS].refused[name] >= 2
        logged = [r.getMessage() for r in caplog.records]
        assert any(sandbox.entity_id(clean_pbx.inst.name) in m for m in logged)
        # the refused target takes no call: pbx_b's call never reaches instance two
        with sipp.Carrier(pbx_b.inst, hold_ms=100):
            await asyncio.to_thread(sipp.place_calls, pbx_b.inst, "13800138050", count=1,
                                    timeout_s=30)
        assert app[STASIS].screener.stats.decisions == 0
        assert app[STASIS].screener.stats.failed == 0
        # instance one, the name's holder, is untouched
        assert runner_one.app[STASIS].connected and runner_one.app[AMI].connected
        assert (await health_of(runner_one.app))["status"] == "ok"
    finally:
        await runner_two.cleanup()
        await runner_one.cleanup()
        pbx_b.hangup_all()


async def test_one_asterisk_on_two_instances_needs_a_stasis_application_each(
    clean_pbx: sandbox.Sandbox, shared: Shared, tmp_path: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one = cluster_settings(clean_pbx, shared, tmp_path / "spool-one")
    runner_one = await start_outguard(clean_pbx, one, Parts(agi=False), monkeypatch)
    try:
        # the same Asterisk, the same name, the same application: the ARI target refused,
        # the AMI target (following outcomes) used
        same = cluster_settings(clean_pbx, shared, tmp_path / "spool-two")
        runner = leaks.BoundedRunner(build_app(same, Parts(agi=False)))
        await runner.setup()
        try:
            app = runner.app
            name = clean_pbx.inst.name
            await eventually(lambda: (name, "ari-app") in app[CLAIMS].conflicts,
                             "the second ARI connection of one application refused")
            await eventually(lambda: app[AMI].connected, "its AMI target connected")
            assert not app[STASIS].connected
            why = (await health_of(app))["errors"][f"ari:{name}"]
            assert f"Stasis application '{clean_pbx.inst.app}'" in why
            assert "an application of its own" in why
        finally:
            await runner.cleanup()
        # with an application of its own, it is used
        own = named(cluster_settings(clean_pbx, shared, tmp_path / "spool-three"),
                    clean_pbx.inst.name, app=f"{clean_pbx.inst.app}-2")
        runner = leaks.BoundedRunner(build_app(own, Parts(agi=False)))
        await runner.setup()
        try:
            await eventually(lambda: runner.app[STASIS].connected and runner.app[AMI].connected,
                             "both targets of the second instance connected")
            assert runner.app[CLAIMS].conflicts == {}
        finally:
            await runner.cleanup()
        assert runner_one.app[STASIS].connected  # the first kept its application
    finally:
        await runner_one.cleanup()


async def test_fastagi_calls_of_a_second_asterisk_under_a_claimed_pbx_name_fail_naming_both(
    clean_pbx: sandbox.Sandbox, pbx_b: sandbox.Sandbox, shared: Shared,  # noqa: F811
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two FastAGI-only instances (no ARI or AMI target: both PBXes are "default"): the
    dialplan passes ${ENTITYID}; the first Asterisk's calls claim the name, the second's
    get verdict failed (agi_pbx_conflict, the dialplan's failure policy), never screened,
    and its instance says why."""
    pbx_b.hangup_all()

    def agi_only(pbx: sandbox.Sandbox, spool: Path) -> Settings:
        return dataclasses.replace(cluster_settings(pbx, shared, spool), ari=(), ami=())

    parts = Parts(ari=False, ami=False, api=False)
    runner_one = await start_outguard(clean_pbx, agi_only(clean_pbx, tmp_path / "spool-one"),
                                      parts, monkeypatch)
    runner_two = await start_outguard(pbx_b, agi_only(pbx_b, tmp_path / "spool-two"),
                                      parts, monkeypatch)
    try:
        with sipp.Carrier(clean_pbx.inst, hold_ms=100):
            run = await asyncio.to_thread(sipp.place_calls, clean_pbx.inst, "13800138060",
                                          from_user="agent-agi", timeout_s=30)
        assert run.only.final == 200
        with sipp.Carrier(pbx_b.inst, hold_ms=100) as carrier:
            refused = await asyncio.to_thread(sipp.place_calls, pbx_b.inst, "13800138061",
                                              from_user="agent-agi", timeout_s=30)
            assert carrier.invites() == []
        assert refused.only.final == 503  # the sandbox dialplan fails closed (cause 34)
        two = runner_two.app
        assert (two[SCREENER].stats.decisions, two[SCREENER].stats.failed) == (0, 1)
        (why,) = two[CLAIMS].conflicts.values()
        for fragment in ["pbx 'default'", sandbox.entity_id(pbx_b.inst.name),
                         sandbox.entity_id(clean_pbx.inst.name), "agi_pbx_conflict"]:
            assert fragment in why
        assert why in (await health_of(two))["reasons"]
        store = two[STORE]
        rows = await store.run(lambda: list(store.store.iter_calls()))
        assert [(r.call.verdict, r.call.reason, r.call.pbx) for r in rows
                if r.call.destination.endswith("13800138061")] == [
            ("failed", "agi_pbx_conflict", f"default?{sandbox.entity_id(pbx_b.inst.name)}")]
        one = runner_one.app
        assert one[SCREENER].stats.decisions == 1 and one[CLAIMS].conflicts == {}
        assert not [r for r in (await health_of(one))["reasons"] if "Asterisk" in r]
    finally:
        await runner_two.cleanup()
        await runner_one.cleanup()
        pbx_b.hangup_all()


async def test_a_pbx_global_outguard_set_follows_a_rename_unless_its_name_is_in_use(
    clean_pbx: sandbox.Sandbox, shared: Shared, tmp_path: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OUTGUARD_PBX as outguard set it (OUTGUARD_PBX_SET equal to it) outlives outguard in
    Asterisk: a second instance attaching the same Asterisk under another name while the
    first still claims it leaves it (flagged); the instance restarted with its PBX renamed
    replaces it; an embedded outguard moved onto the PBX empties it."""
    from outguard.server import DIALPLANS
    from tests.integration.conftest import ari, serving

    def globals_now() -> tuple[str, str]:
        return tuple(ari(clean_pbx, "GET", f"/asterisk/variable?variable={name}")["value"]
                     for name in ("OUTGUARD_PBX", "OUTGUARD_PBX_SET"))  # type: ignore[return-value]

    old = clean_pbx.inst.name
    first = cluster_settings(clean_pbx, shared, tmp_path / "spool-a")
    runner = await start_outguard(clean_pbx, first, Parts(agi=False, api=False), monkeypatch)
    try:
        await eventually(lambda: runner.app[DIALPLANS][old].found == old, "OUTGUARD_PBX set")
        assert globals_now() == (old, old)
        # another instance, the same Asterisk under another name (AMI only: the
        # application is the first's): the value is the first's, live: left, flagged
        moved = named(cluster_settings(clean_pbx, shared, tmp_path / "spool-b"), "moved-1")
        other = await start_outguard(clean_pbx, moved, Parts(ari=False, agi=False, api=False),
                                     monkeypatch)
        try:
            dialplan = other.app[DIALPLANS]["moved-1"]
            await eventually(lambda: dialplan.found == old, "OUTGUARD_PBX checked")
            assert dialplan.problem and globals_now() == (old, old)
        finally:
            await other.cleanup()
    finally:
        await runner.cleanup()
    # the first instance again, its PBX renamed: the value it set follows the rename
    renamed = named(cluster_settings(clean_pbx, shared, tmp_path / "spool-a"), "renamed-1")
    runner = await start_outguard(clean_pbx, renamed, Parts(agi=False, api=False), monkeypatch)
    try:
        dialplan = runner.app[DIALPLANS]["renamed-1"]
        await eventually(lambda: dialplan.found == "renamed-1", "OUTGUARD_PBX replaced")
        assert dialplan.problem == "" and globals_now() == ("renamed-1", "renamed-1")
    finally:
        await runner.cleanup()
    # the PBX moved to an embedded outguard: the value outguard set is emptied
    async with serving(clean_pbx, tmp_path, Parts(agi=False), monkeypatch) as embedded:
        dialplan = embedded.app[DIALPLANS][embedded.stasis.pbx]
        await eventually(lambda: dialplan.found == "", "OUTGUARD_PBX emptied")
        assert dialplan.problem == "" and globals_now() == ("", "")
        assert (await health_of(embedded.app))["status"] == "ok"


async def test_a_fail_open_call_holds_its_shared_reservation_until_it_ends(
    clean_pbx: sandbox.Sandbox, shared: Shared, tmp_path: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = cluster_settings(clean_pbx, shared, tmp_path / "spool-one", "cluster-open.toml")
    settings = dataclasses.replace(
        settings, calls=dataclasses.replace(settings.calls, fail_mode="open"))
    runner = await start_outguard(clean_pbx, settings, Parts(agi=False), monkeypatch)
    try:
        og = Running(runner.app, settings, clean_pbx)

        async def broken(*_: Any) -> Any:
            raise RuntimeError("screening broke")

        monkeypatch.setattr(og.screener, "screen_reserving", broken)
        with sipp.Carrier(clean_pbx.inst, hold_ms=120_000) as carrier:
            call = asyncio.ensure_future(og.call(  # the channel's failure policy: open
                "13800138060", caller_id="01088880006", account="a-unscreened",
                fail_mode="open", timeout_s=150))
            await eventually(lambda: carrier.invites() == ["13800138060"],
                             "the unscreened call out to the carrier")

            async def held() -> bool:
                return await shared.count("concurrent_tenant", "t1") == 1

            await eventually(held, "the unscreened call to hold its tenant slot in Redis")
            assert await shared.count("caller_id", "+861088880006") == 1
            assert await shared.count("account", "a-unscreened") == 1
            assert og.screener.shared is not None
            assert og.screener.shared.health.unscreened == 1
            clean_pbx.hangup_all()
            assert (await call).only.final == 200
        await shared.slots_drain("t1")  # released on its outcome
        assert await shared.count("caller_id", "+861088880006") == 1  # still counted
        [row] = [c for c in await og.logged() if c.call.account == "a-unscreened"]
        assert (row.call.verdict, row.call.rule) == ("failed", "fail-open")
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("stop", ["graceful", "kill -9", "kill -9 before a failed append"])
async def test_call_events_of_an_instance_stopped_while_redis_is_down_reach_the_other(
    clean_pbx: sandbox.Sandbox, pbx_b: sandbox.Sandbox, shared: Shared,  # noqa: F811
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: str,
) -> None:
    """Redis stops; instance A screens calls (its caps fail open) and stops, gracefully
    or killed, before Redis answers again; Redis comes back (empty after a crash); A starts
    again: B's figures get A's decisions and outcomes, each once. In the last case Redis
    hangs (SIGSTOP) rather than dies: A's first append of the calls' events is still
    waiting for an answer (nothing has failed, nothing was noticed) when it is killed."""
    pbx_b.hangup_all()
    two = cluster_settings(pbx_b, shared, tmp_path / "spool-two", "cluster-open.toml")
    monkeypatch.setenv("OUTGUARD_ARI_PASSWORD", pbx_b.inst.ari_password)
    monkeypatch.setenv("OUTGUARD_AMI_PASSWORD", pbx_b.inst.ami_password)
    runner_two = await start_outguard(pbx_b, two, Parts(agi=False, ami=False), monkeypatch)
    b = Running(runner_two.app, two, pbx_b)
    a = ClusterProcess(clean_pbx, tmp_path / "a", shared, 7200.0, policy="cluster-open.toml",
                       parts="ari,ami,api")
    a.start(timeout=90.0)
    spool = tmp_path / "a" / "spool"
    hang = stop == "kill -9 before a failed append"
    redis = shared.redis.proc
    assert redis is not None
    try:
        await eventually(lambda: FeedMark(spool).through is not None, "A's first mark")
        if hang:
            redis.send_signal(signal.SIGSTOP)
        else:
            shared.redis.kill()
        with sipp.Carrier(clean_pbx.inst, hold_ms=300):
            run = await asyncio.to_thread(
                sipp.place_calls, clean_pbx.inst, "13800138070", count=3, rate=5,
                caller_id="01088880002", account="a-owed", timeout_s=30)
        assert run.finals() == [200] * 3

        def ended() -> bool:
            rows = a.rows()
            return len(rows) == 3 and all(r["ended_at"] is not None for r in rows)

        await eventually(ended, "A's three calls logged with their outcomes", interval=0.05)
        a.stop(signal.SIGTERM if stop == "graceful" else signal.SIGKILL)
        since = FeedMark(spool).since  # the next start derives the events from there
        assert since is not None and since <= min(r["at"] for r in a.rows())
        assert b.enforcer.risk("account", "a-owed").attempts == 0  # B never heard of them
        if hang:
            redis.send_signal(signal.SIGCONT)  # A's hung append may land now, or not
        else:
            shared.redis.restart()  # back, and empty
        a.start(timeout=90.0)  # a start costs seconds of CPU: slow on a loaded host
        await eventually(lambda: b.enforcer.risk("account", "a-owed").ended == 3,
                         "A's calls, decisions and outcomes, in B's figures")
        last = max(r["ended_at"] for r in a.rows())
        await eventually(lambda: (FeedMark(spool).through or 0) > last,
                         "A's mark past its calls once they are appended")
        figures = b.enforcer.risk("account", "a-owed")
        assert (figures.attempts, figures.allowed, figures.ended) == (3, 3, 3)
        health = a.health()
        assert health is not None and health["status"] == "ok"
    finally:
        a.stop(signal.SIGKILL)
        if redis.poll() is None:
            redis.send_signal(signal.SIGCONT)
        if shared.redis.proc is None or shared.redis.proc.poll() is not None:
            shared.redis.restart()
        await runner_two.cleanup()
