"""Two sandbox Asterisk instances, two outguard instances, one PostgreSQL store, one Redis.

What is pinned here: a list entry made through one instance blocks the next call on the
other PBX (the change is pushed by LISTEN/NOTIFY and the other snapshot rebuilt at once),
and both instances write one call log; a per-caller-ID daily cap of N admits exactly N of
the calls arriving at once from both PBXes; Redis restarted mid-load makes the cap fail
closed, then recover with its counts rebuilt; with a cap that fails open, the calls up
across a Redis outage hold their slots again when it returns and the call events kept
meanwhile reach the other instance; an instance killed with kill -9 mid-load loses no
committed call-log row and its live-call slots expire after their TTL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from outguard import sandbox
from outguard.callfacts import ChannelFacts
from outguard.cluster.caps import RedisCaps
from outguard.config import ClusterConfig, Settings
from outguard.server import Parts
from outguard.testing import sipp
from outguard.testing.servers import REDIS_BASE_PORT, PostgresServer, RedisServer
from rules.model import PartyKind
from tests.conftest import TEST_INSTANCE, TEST_PORT_OFFSET
from tests.integration.conftest import POLICIES, Running, settings_for, start_outguard
from tests.integration.test_restart import OutguardProcess
from tests.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster_redis() -> Iterator[RedisServer]:
    """The cluster's Redis, of this module's own (to kill and restart): port 17000 +
    offset + 60."""
    server = RedisServer(REDIS_BASE_PORT + TEST_PORT_OFFSET + 60, f"{TEST_INSTANCE}-cluster")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclasses.dataclass
class Shared:
    """What the two instances of a test share: the database URL, the Redis, the prefix."""

    url: str
    redis: RedisServer
    prefix: str

    def cluster(self, slot_ttl_s: float = 7200.0) -> ClusterConfig:
        # a generous Redis timeout: a reply slower than it fails the call by the caps'
        # policy (503), which on a loaded test host is scheduling, not the behaviour under
        # test (an outage is a killed Redis: refused at once, whatever the timeout)
        return ClusterConfig(redis=self.redis.url, prefix=self.prefix, slot_ttl_s=slot_ttl_s,
                             timeout_ms=5000)

    async def slots_drain(self, tenant: str) -> None:
        """Wait until the tenant holds no live-call slot in Redis."""
        async def drained() -> bool:
            return await self.count("concurrent_tenant", tenant) == 0

        await eventually(drained, f"tenant {tenant}'s live-call slots to drain", interval=0.1)

    async def count(self, scope: str, key: str, window_s: int = 86400) -> int:
        reader = RedisCaps.from_url(self.redis.url, prefix=self.prefix, timeout_s=5)
        try:
            return await reader.count(scope, key, window_s, time.time())
        finally:
            await reader.aclose()


@pytest.fixture
def shared(pg_server: PostgresServer, cluster_redis: RedisServer) -> Iterator[Shared]:
    if cluster_redis.proc is None or cluster_redis.proc.poll() is not None:
        cluster_redis.restart()
    name = f"cl_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name)
    try:
        yield Shared(url, cluster_redis, f"{name}:")
    finally:
        pg_server.drop_database(name)


def cluster_settings(pbx: sandbox.Sandbox, shared: Shared, spool: Path,
                     policy: str = "cluster.toml") -> Settings:
    """An instance of the cluster on ``pbx``, its PBX named after its sandbox instance
    (cluster mode needs every PBX named), the instance after its spool directory (two
    in-process instances would otherwise share "<host>:<API port>")."""
    base = settings_for(pbx, spool.parent / "unused.db")
    return dataclasses.replace(
        base, store=shared.url, spool_dir=str(spool), policy=str(POLICIES / policy),
        cluster=dataclasses.replace(shared.cluster(), instance=spool.name),
        ari=tuple(dataclasses.replace(t, pbx=pbx.inst.name) for t in base.ari),
        ami=tuple(dataclasses.replace(t, pbx=pbx.inst.name) for t in base.ami))


@pytest.fixture
def policy_name() -> str:
    """The pair's policy (a test parametrizes it to change it)."""
    return "cluster.toml"


@pytest.fixture
async def pair(
    clean_pbx: sandbox.Sandbox, pbx_b: sandbox.Sandbox, shared: Shared,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy_name: str,
) -> AsyncIterator[tuple[Running, Running]]:
    pbx_b.hangup_all()
    one = cluster_settings(clean_pbx, shared, tmp_path / "spool-one", policy_name)
    two = cluster_settings(pbx_b, shared, tmp_path / "spool-two", policy_name)
    runner_one = await start_outguard(clean_pbx, one, Parts(agi=False, ami=False), monkeypatch)
    monkeypatch.setenv("OUTGUARD_ARI_PASSWORD", pbx_b.inst.ari_password)
    monkeypatch.setenv("OUTGUARD_AMI_PASSWORD", pbx_b.inst.ami_password)
    try:
        runner_two = await start_outguard(pbx_b, two, Parts(agi=False, ami=False), monkeypatch)
        try:
            yield Running(runner_one.app, one, clean_pbx), Running(runner_two.app, two, pbx_b)
        finally:
            await runner_two.cleanup()
    finally:
        await runner_one.cleanup()
        pbx_b.hangup_all()


async def test_a_list_entry_made_through_one_instance_blocks_the_next_call_on_the_other_pbx(
    pair: tuple[Running, Running],
) -> None:
    one, two = pair
    number = "13800138009"
    with sipp.Carrier(two.pbx.inst, hold_ms=100) as carrier:
        first = await two.call(number, account="a1")
        assert first.only.final == 200 and carrier.invites() == [number]
    target = await one.store.data_version() + 2  # a fresh database: only our two changes
    rebuilt = asyncio.Event()
    original = two.screener.rebuild

    async def watched() -> object:
        seen = await two.store.data_version()  # the snapshot holds at least this version
        snap = await original()
        if seen >= target:
            rebuilt.set()
        return snap

    two.screener.rebuild = watched  # type: ignore[method-assign]
    await one.store.create_list("dnc", "dnc")  # the policy's do-not-call list
    await one.store.add_entries("dnc", [number])
    changed = time.monotonic()
    await asyncio.wait_for(rebuilt.wait(), 5)
    assert time.monotonic() - changed < 1.0  # pushed, not polled (the poll is every 2 s)
    with sipp.Carrier(two.pbx.inst, hold_ms=100) as carrier:
        second = await two.call(number, account="a1")
        assert carrier.invites() == []
    assert second.only.final == 403
    await one.settle()
    await two.settle()
    log = await one.logged()
    assert [c.call.verdict for c in log] == ["allow", "block"]


CALLER = "01088880001"  # the caller ID of the cap tests (+861088880001)


async def test_a_daily_caller_id_cap_of_n_admits_exactly_n_of_calls_arriving_at_once_from_both_pbxes(
    pair: tuple[Running, Running], shared: Shared,
) -> None:
    one, two = pair
    with sipp.Carrier(one.pbx.inst, hold_ms=100) as carrier_one, \
            sipp.Carrier(two.pbx.inst, hold_ms=100) as carrier_two:
        runs = await asyncio.gather(*(
            side.call("13800138010", count=10, rate=20, caller_id=CALLER, account=f"a-{n}")
            for n, side in enumerate(pair)))
        invites = len(carrier_one.invites()) + len(carrier_two.invites())
    finals = sorted(f for run in runs for f in run.finals())
    assert finals == [200] * 6 + [486] * 14, finals  # the cap is 6 for the whole cluster
    assert invites == 6
    await one.settle()
    await two.settle()
    log = await one.logged()
    assert sorted((c.call.verdict, c.call.reason) for c in log) == sorted(
        [("allow", "ok")] * 6 + [("block", "rate_cap")] * 14)
    assert await shared.count("caller_id", "+861088880001") == 6  # blocked calls never count
    await shared.slots_drain("t1")  # every slot given back


async def test_redis_restarted_mid_load_fails_the_cap_closed_then_recovers_with_its_counts(
    pair: tuple[Running, Running], shared: Shared,
) -> None:
    one, two = pair
    with sipp.Carrier(one.pbx.inst, hold_ms=100), sipp.Carrier(two.pbx.inst, hold_ms=100):
        before = await one.call("13800138011", count=2, rate=10, caller_id=CALLER)
        assert before.finals() == [200, 200]
        await one.settle()  # the two allowed calls are in the call log
        rebuilt = sum(r.screener.shared.health.rebuilds for r in pair)  # type: ignore[union-attr]
        shared.redis.kill()
        try:
            during = await asyncio.gather(
                one.call("13800138012", caller_id=CALLER), two.call("13800138013",
                                                                    caller_id=CALLER))
            assert [r.only.final for r in during] == [503, 503]  # when_unavailable = block
            assert not one.screener.shared.health.available  # type: ignore[union-attr]
        finally:
            shared.redis.restart()  # back, empty (no persistence)
        await eventually(lambda: all(r.screener.shared.health.available  # type: ignore[union-attr]
                                     for r in pair), "both instances to see Redis back")
        after = await asyncio.gather(
            one.call("13800138014", count=3, rate=10, caller_id=CALLER),
            two.call("13800138015", count=3, rate=10, caller_id=CALLER))
    finals = sorted(f for run in after for f in run.finals())
    assert finals == [200] * 4 + [486] * 2, finals  # 2 counted before + 4 = the cap of 6
    assert await shared.count("caller_id", "+861088880001") == 6
    health = [r.screener.shared.health for r in pair]  # type: ignore[union-attr]
    assert sum(h.failed_closed for h in health) == 2
    assert sum(h.rebuilds for h in health) == rebuilt + 1  # one instance rebuilt the counts
    await two.settle()
    log = await one.logged()
    assert sorted(c.call.reason for c in log if c.call.verdict == "block") == [
        "cap_store_unavailable"] * 2 + ["rate_cap"] * 2


@pytest.mark.parametrize("policy_name", ["cluster-open.toml"])
async def test_after_a_redis_outage_calls_let_through_hold_their_slots_and_reach_every_instance(
    pair: tuple[Running, Running], shared: Shared,
) -> None:
    """A cap that fails open lets a call through while Redis is down: when Redis returns
    (empty) the call still up takes its slot, as does the call that was up before, and
    its decision, kept while Redis could not take it, reaches the other instance."""
    one, two = pair
    assert one.screener.shared is not None and two.screener.shared is not None
    with sipp.Carrier(one.pbx.inst, hold_ms=120_000) as carrier_one, \
            sipp.Carrier(two.pbx.inst, hold_ms=120_000) as carrier_two:
        first = asyncio.ensure_future(one.call("13800138040", account="a-up", timeout_s=150))
        await eventually(lambda: carrier_one.invites() == ["13800138040"], "call 1 connected")
        shared.redis.kill()
        try:
            second = asyncio.ensure_future(two.call("13800138041", account="a-out",
                                                    timeout_s=150))
            await eventually(lambda: carrier_two.invites() == ["13800138041"],
                             "call 2, let through while Redis is down, connected")
            assert two.screener.shared.health.failed_open == 1
        finally:
            shared.redis.restart()  # back, and empty
        await eventually(lambda: one.screener.shared.health.available  # type: ignore[union-attr]
                         and two.screener.shared.health.available,  # type: ignore[union-attr]
                         "both instances to see Redis back")

        async def both_held() -> bool:
            return await shared.count("concurrent_tenant", "t1") == 2

        await eventually(both_held, "both calls up to hold their slots again")
        ids = {c.call_id for side in pair for c in side.screener.live.calls()}
        reader = RedisCaps.from_url(shared.redis.url, prefix=shared.prefix, timeout_s=5)
        try:
            members = await reader.client.zrange(shared.prefix + "c:tenant:t1", 0, -1)
        finally:
            await reader.aclose()
        assert {m.decode() for m in members} == ids and len(ids) == 2
        third = await two.screener.screen_reserving(ChannelFacts(
            "ari", "probe-3", "PJSIP/agent-probe", "13800138042", "01088886666",
            account="a-3"))
        assert (third.allowed, third.verdict.rule_id) == (False, "tenant_concurrent")
        # call 2's decision waited for Redis on instance two, then reached instance one
        await eventually(lambda: one.enforcer.risk("account", "a-out").allowed == 1,
                         "call 2 in the other instance's figures")
        one.pbx.hangup_all()
        two.pbx.hangup_all()
        assert [(await run).only.final for run in (first, second)] == [200, 200]
    await shared.slots_drain("t1")


class ClusterProcess(OutguardProcess):
    """``outguard serve`` in a process of its own on the cluster's PostgreSQL and Redis."""

    def __init__(self, pbx: sandbox.Sandbox, workdir: Path, shared: Shared,
                 slot_ttl_s: float, policy: str = "cluster.toml",
                 parts: str = "ari,api") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(pbx, workdir, parts)
        self.url = shared.url
        text = self.settings.read_text(encoding="utf-8").split("\n", 2)[2]  # store, policy
        for section in ("[ari]\n", "[ami]\n"):  # cluster mode needs every PBX named
            text = text.replace(section, f'{section}pbx = "{pbx.inst.name}"\n')
        self.settings.write_text(
            f'store = "{shared.url}"\nspool_dir = "{workdir / "spool"}"\n'
            f'policy = "{POLICIES / policy}"\n{text}'
            f'[cluster]\nredis = "{shared.redis.url}"\nprefix = "{shared.prefix}"\n'
            f'slot_ttl_s = {slot_ttl_s}\n', encoding="utf-8")

    caller_id = "+861088880002"  # the caller ID of the calls placed on this PBX

    def rows(self) -> list[dict[str, Any]]:
        """This PBX's call-log rows, as PostgreSQL has them committed."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(
                "SELECT decision_id, verdict, at, ended_at, end_note FROM calls"
                " WHERE caller_id = %s ORDER BY at", (self.caller_id,))
            names = [d.name for d in cur.description or ()]
            return [dict(zip(names, row)) for row in cur.fetchall()]


async def test_an_instance_killed_mid_load_loses_no_committed_row_and_its_slots_expire(
    clean_pbx: sandbox.Sandbox, pbx_b: sandbox.Sandbox, shared: Shared, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pbx_b.hangup_all()
    ttl = 3.0
    settings = dataclasses.replace(cluster_settings(clean_pbx, shared, tmp_path / "spool-one"),
                                   cluster=shared.cluster(slot_ttl_s=ttl))
    runner = await start_outguard(clean_pbx, settings, Parts(agi=False, ami=False), monkeypatch)
    one = Running(runner.app, settings, clean_pbx)
    two = ClusterProcess(pbx_b, tmp_path / "two", shared, ttl)
    try:
        two.start()
        with sipp.Carrier(clean_pbx.inst, hold_ms=1500), sipp.Carrier(pbx_b.inst, hold_ms=1500):
            load_two = asyncio.ensure_future(asyncio.to_thread(
                sipp.place_calls, pbx_b.inst, "13800138020", count=6, rate=3,
                caller_id="01088880002", timeout_s=30))
            load_one = asyncio.ensure_future(one.call(
                "13800138021", count=6, rate=3, caller_id="01088880003", timeout_s=30))
            await eventually(lambda: sum(r["verdict"] == "allow" for r in two.rows()) >= 2,
                             "the second instance to let two calls through", interval=0.05)
            two.stop(signal.SIGKILL)  # mid-load, with calls up
            committed = {r["decision_id"] for r in two.rows()}
            run_one = await load_one
            await load_two
        assert run_one.finals() == [200] * 6  # the survivor kept deciding
        pbx_b.hangup_all()
        await one.settle()
        await shared.slots_drain("t1")  # the dead one's slots expired (ttl 3 s)

        two.start()  # back: its open rows are closed against what Asterisk reports
        await eventually(lambda: all(r["ended_at"] is not None for r in two.rows()),
                         "every row of the killed instance closed", interval=0.05)
        after = {r["decision_id"] for r in two.rows()}
        assert committed <= after and len(committed) >= 2  # no committed row lost
        await shared.slots_drain("t1")  # restored, then released
        assert await shared.count("caller_id", "+861088880002") == sum(
            r["verdict"] == "allow" for r in two.rows())
    finally:
        two.stop(signal.SIGKILL)
        await runner.cleanup()
        pbx_b.hangup_all()


@pytest.mark.parametrize("policy_name", ["cluster-enforcement.toml"])
async def test_a_trigger_fires_once_for_the_cluster_on_calls_from_both_pbxes(
    pair: tuple[Running, Running],
) -> None:
    one, two = pair
    assert one.enforcer.leads() and not two.enforcer.leads()  # the first one up leads
    await one.store.create_tenant("t1", "tenant one")
    await one.store.create_account("a-enf", "t1")
    with sipp.Carrier(one.pbx.inst, hold_ms=100), sipp.Carrier(two.pbx.inst, hold_ms=100):
        runs = await asyncio.gather(*(
            side.call("13800138030", count=2, rate=10, caller_id="01088880004",
                      account="a-enf") for side in pair))
        assert [f for run in runs for f in run.finals()] == [200] * 4
        # the leader folds both PBXes' calls, then acts
        await eventually(lambda: one.store.list_suspensions(party_key="a-enf"),
                         "the trigger to fire")
        suspended = time.monotonic()
        while not _suspended(two, "a-enf"):  # pushed to the other instance's snapshot
            assert time.monotonic() - suspended < 1.0, "not blocked on the other PBX in 1 s"
            await asyncio.sleep(0.02)
        blocked = await two.call("13800138031", caller_id="01088880004", account="a-enf")
    assert blocked.only.final == 480  # party_status
    # both instances counted all four calls; the follower acts on none of it
    assert one.enforcer.risk("account", "a-enf").allowed == 4
    await eventually(lambda: two.enforcer.risk("account", "a-enf").allowed == 4,
                     "the follower's figures to count all four calls")
    assert await two.enforcer.evaluate() == [] and await one.enforcer.evaluate() == []
    rows = await one.store.list_suspensions(party_key="a-enf")
    assert [(s.trigger, s.created_by) for s in rows] == [("busy_account", "trigger:busy_account")]


def _suspended(side: Running, account: str) -> bool:
    snap = side.screener.snapshot
    party = snap.party(PartyKind.ACCOUNT, account) if snap is not None else None
    return party is not None and party.state.value != "active"


def roundtrips(interface: str) -> dict[str, float]:
    """How many requests on a channel (ARI; not the listings and the global the connect
    sends, which may still be under way) or commands (FastAGI) outguard sent so far, by
    operation."""
    from outguard.probes import ROUNDTRIP

    return {s.labels["operation"]: s.value for metric in ROUNDTRIP.collect()
            for s in metric.samples
            if s.name.endswith("_count") and s.labels["interface"] == interface
            and s.labels["operation"] not in AT_CONNECT}


#: what the ARI app sends at a (re)connect: the listings of the reconcile, the event filter,
#: the dialplan's OUTGUARD_PBX read and set
AT_CONNECT = frozenset({"GET channels", "GET applications", "GET bridges", "GET asterisk",
                        "POST asterisk", "PUT applications/eventFilter"})


@pytest.mark.parametrize(("agent", "interface", "plain"), [
    ("agent", "ari", "POST channels/continue"),
    ("agent-agi", "agi", "SET VARIABLE")], ids=["ari-continue", "fastagi"])
async def test_a_plainly_allowed_call_costs_one_request_in_cluster_mode_as_embedded(
    clean_pbx: sandbox.Sandbox, shared: Shared, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, agent: str, interface: str, plain: str,
) -> None:
    """outguard sets the dialplan's global OUTGUARD_PBX at connect; [outguard-allow] then
    builds the call id <uniqueid>@<pbx> itself: one ARI request (continue) or one FastAGI
    command for a plainly allowed call, and the channel's OUTGUARD_DECISION_ID, the row's
    key and the id the hangup handler reports are the same."""
    from outguard.server import DIALPLANS
    from tests.integration.conftest import ChannelVariables, ari

    settings = cluster_settings(clean_pbx, shared, tmp_path / "spool")
    runner = await start_outguard(clean_pbx, settings, Parts(api=False), monkeypatch)
    og = Running(runner.app, settings, clean_pbx)
    try:
        name = clean_pbx.inst.name  # cluster mode: the PBX named (cluster_settings)
        dialplan = og.app[DIALPLANS][name]
        await eventually(lambda: dialplan.found == name, "OUTGUARD_PBX set at connect")
        assert ari(clean_pbx, "GET", "/asterisk/variable?variable=OUTGUARD_PBX") == {
            "value": name}
        before = roundtrips(interface)
        async with ChannelVariables(clean_pbx) as seen:
            with sipp.Carrier(clean_pbx.inst, hold_ms=200):
                run = await og.call("13800138011", account="a-plain", from_user=agent)
            assert run.finals() == [200]
            variables = await seen.verdict("allow")
        await og.settle()
        after = roundtrips(interface)
        sent = {op: n - before.get(op, 0) for op, n in after.items() if n != before.get(op, 0)}
        assert sent == {plain: 1}, sent
        [row] = await og.logged()
        assert row.call.decision_id == variables["OUTGUARD_DECISION_ID"]
        assert row.call.decision_id.endswith(f"@{name}") and row.cause == 16
        assert (row.call.verdict, row.call.reason) == ("allow", "ok")
        assert dialplan.problem == ""
    finally:
        await runner.cleanup()


async def test_a_pbx_global_naming_another_pbx_is_flagged_and_never_overwritten(
    clean_pbx: sandbox.Sandbox, shared: Shared, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OUTGUARD_PBX says another PBX's name: outguard leaves it, /health would say degraded
    with the reason, and each allowed call gets its decision id from outguard (one more
    request), so the channel still holds the row's id."""
    from outguard.server import DIALPLANS
    from tests.integration.conftest import ChannelVariables, ari

    ari(clean_pbx, "POST", "/asterisk/variable?variable=OUTGUARD_PBX&value=sh-9")
    settings = cluster_settings(clean_pbx, shared, tmp_path / "spool")
    runner = await start_outguard(clean_pbx, settings, Parts(agi=False, api=False), monkeypatch)
    og = Running(runner.app, settings, clean_pbx)
    try:
        dialplan = og.app[DIALPLANS][clean_pbx.inst.name]
        await eventually(lambda: dialplan.found == "sh-9", "OUTGUARD_PBX checked at connect")
        assert "sh-9" in dialplan.problem
        before = roundtrips("ari")
        async with ChannelVariables(clean_pbx) as seen:
            with sipp.Carrier(clean_pbx.inst, hold_ms=200):
                run = await og.call("13800138012", account="a-flag")
            assert run.finals() == [200]
            variables = await seen.verdict("allow")
        await og.settle()
        after = roundtrips("ari")
        assert sum(after.values()) - sum(before.values()) == 2
        [row] = await og.logged()
        assert row.call.decision_id == variables["OUTGUARD_DECISION_ID"]
        assert ari(clean_pbx, "GET", "/asterisk/variable?variable=OUTGUARD_PBX") == {
            "value": "sh-9"}
    finally:
        await runner.cleanup()
