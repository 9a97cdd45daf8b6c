"""One outguard, several PBXes: settings name each target's PBX, and a channel is known by
its PBX AND its id everywhere a call is found, followed, restored or reconciled. Two PBXes
can have the same channel name and the same unique id (Asterisk's EPOCH.SEQUENCE ids
collide between boxes started in the same second)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agi.outcomes import ENDED_EVENT, OutcomeTracker
from outguard import config
from outguard.callfacts import ChannelFacts
from outguard.live import DEFAULT_PBX, UNKNOWN_WHILE_AWAY, InMemoryLiveCalls, LiveCall
from outguard.reports import build_report
from outguard.service import Screener
from outguard.store.aio import AsyncStore
from outguard.store.base import CallRecord, LoggedCall
from outguard.store.sqlite import SQLiteStore
from rules.policy import parse_policy
from tests.unit.service.test_restart import POLICY  # a concurrency cap of 1 per account

UID = "1795400932.7"  # the same unique id on both PBXes
NAME = "PJSIP/agent-00000001"  # and the same channel name



# -- settings ------------------------------------------------------------------------------

def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> config.Settings:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return config.load(path, env=env or {})


TWO = """
[[ari]]
pbx = "bj-1"
url = "http://10.0.0.1:8088/ari"
password_env = "BJ1_ARI"

[[ari]]
pbx = "sh-1"
url = "http://10.0.0.2:8088/ari"
password_env = "SH1_ARI"

[[ami]]
pbx = "bj-1"
host = "10.0.0.1"

[[ami]]
pbx = "sh-1"
host = "10.0.0.2"
"""


def test_several_targets_each_name_their_pbx(tmp_path: Path) -> None:
    settings = load(tmp_path, TWO)
    assert [(a.pbx, a.url, a.password_env) for a in settings.ari] == [
        ("bj-1", "http://10.0.0.1:8088/ari", "BJ1_ARI"),
        ("sh-1", "http://10.0.0.2:8088/ari", "SH1_ARI")]
    assert [(m.pbx, m.host, m.port) for m in settings.ami] == [
        ("bj-1", "10.0.0.1", 5038), ("sh-1", "10.0.0.2", 5038)]
    assert settings.pbx_names() == ["bj-1", "sh-1"]
    assert settings.ari_target("sh-1").url == "http://10.0.0.2:8088/ari"
    assert settings.ari_target().pbx == "bj-1"


def test_the_single_table_still_works_and_is_the_default_pbx(tmp_path: Path) -> None:
    settings = load(tmp_path, '[ari]\nurl = "http://pbx/ari"\n[ami]\nport = 5039\n')
    assert [(a.pbx, a.url) for a in settings.ari] == [(DEFAULT_PBX, "http://pbx/ari")]
    assert [(m.pbx, m.port) for m in settings.ami] == [(DEFAULT_PBX, 5039)]
    assert settings.pbx_names() == [DEFAULT_PBX]
    assert config.Settings().ari == (config.AriConfig(),)


def test_the_environment_sets_a_single_target(tmp_path: Path) -> None:
    settings = load(tmp_path, "", env={"OUTGUARD_AMI_PORT": "6000"})
    assert settings.ami[0].port == 6000


@pytest.mark.parametrize(("text", "fragments"), [
    pytest.param('[[ari]]\nurl = "a"\n[[ari]]\npbx = "b"\n',
                 ["ari[1]", "each needs a pbx name"], id="unnamed-among-several"),
    pytest.param('[[ami]]\npbx = "a"\n[[ami]]\npbx = "a"\n',
                 ["ami[2]", "'a' is named by ami[1] too"], id="named-twice"),
    pytest.param('[[ari]]\npbx = "a b"\n', ["ari[1]", "pbx name 'a b'"], id="bad-name"),
    pytest.param('[[ari]]\npbx = "a"\nport = 1\n', ["ari[1]", "unknown setting 'port'"],
                 id="unknown-key-in-an-entry"),
    pytest.param('ari = [1, 2]\n', ["ari[1]", "expected a table"], id="entry-not-a-table"),
    pytest.param('ari = []\n', ["ari", "array of tables"], id="no-entries"),
    pytest.param('[[ami]]\npbx = "a"\nport = "x"\n', ["ami[1].port"], id="wrong-type"),
])
def test_a_bad_target_is_named(tmp_path: Path, text: str, fragments: list[str]) -> None:
    with pytest.raises(config.ConfigError) as err:
        load(tmp_path, text)
    for fragment in [*fragments, "s.toml"]:
        assert fragment in str(err.value)


@pytest.mark.parametrize(("text", "fragments"), [
    pytest.param('[[ari]]\npbx = "a"\nurl = "http://10.0.0.1:8088/ari"\n'
                 '[[ari]]\npbx = "b"\nurl = "http://10.0.0.1:8088/ari/"\n',
                 ["ari[2]", "http://10.0.0.1:8088/ari is ari[1]'s Asterisk too (pbx 'a')"],
                 id="one-ari-twice"),
    pytest.param('[[ami]]\npbx = "a"\nhost = "10.0.0.1"\n'
                 '[[ami]]\npbx = "b"\nhost = "10.0.0.1"\n',
                 ["ami[2]", "10.0.0.1:5038 is ami[1]'s Asterisk too (pbx 'a')"],
                 id="one-ami-twice"),
])
def test_one_asterisk_listed_under_two_names_is_refused(
    tmp_path: Path, text: str, fragments: list[str],
) -> None:
    with pytest.raises(config.ConfigError) as err:
        load(tmp_path, text)
    for fragment in [*fragments, "s.toml", "one Asterisk is one PBX"]:
        assert fragment in str(err.value)


def test_a_disabled_target_may_share_an_address(tmp_path: Path) -> None:
    settings = load(tmp_path, '[[ami]]\npbx = "a"\n[[ami]]\npbx = "b"\nenabled = false\n')
    assert [m.pbx for m in settings.ami] == ["a", "b"]


@pytest.mark.parametrize(("text", "where"), [
    pytest.param('[ari]\nurl = "http://10.0.0.1:8088/ari"\n[ami]\npbx = "bj-1"\n', "ari:",
                 id="unnamed-ari"),
    pytest.param('[ari]\npbx = "bj-1"\n', "ami:", id="unnamed-default-ami"),
    pytest.param('[ari]\npbx = "default"\n[ami]\npbx = "default"\n', "ari:",
                 id="named-default"),
])
def test_cluster_mode_needs_every_pbx_named(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        load(tmp_path, '[cluster]\nredis = "redis://127.0.0.1:6379/0"\n' + text)
    for fragment in ["s.toml", where, "cluster mode", "needs each PBX named",
                     "<uniqueid>@<pbx>"]:
        assert fragment in str(err.value)


def test_cluster_mode_with_named_or_disabled_targets_loads(tmp_path: Path) -> None:
    settings = load(tmp_path, '[cluster]\nredis = "redis://127.0.0.1:6379/0"\n'
                    '[ari]\npbx = "bj-1"\n[ami]\nenabled = false\n')
    assert settings.pbx_names() == ["bj-1"]
    with pytest.raises(config.ConfigError, match="environment: ari: cluster mode"):
        load(tmp_path, "", env={"OUTGUARD_CLUSTER_REDIS": "redis://127.0.0.1:6379/0"})


def test_the_environment_cannot_pick_among_several_targets(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match=r"2 \[\[ari\]\] targets"):
        load(tmp_path, TWO, env={"OUTGUARD_ARI_URL": "http://x/ari"})


def test_an_unknown_pbx_is_named_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="'gz-1' .*bj-1, sh-1"):
        load(tmp_path, TWO).ari_target("gz-1")


# -- the live-call registry ----------------------------------------------------------------

def live_call(call_id: str, pbx: str, channel: str = UID) -> LiveCall:
    return LiveCall(call_id=call_id, channel_id=channel, adapter="agi", tenant="t",
                    account="a", caller_id="+8610", destination="+86138", started=100.0,
                    pbx=pbx)


def test_the_same_channel_id_on_two_pbxes_is_two_calls() -> None:
    live = InMemoryLiveCalls()
    assert live.reserve(live_call("d-a", "a")) and live.reserve(live_call("d-b", "b"))
    assert live.on_channel("a", UID).call_id == "d-a"  # type: ignore[union-attr]
    assert live.on_channel("b", UID).call_id == "d-b"  # type: ignore[union-attr]
    assert live.on_channel("c", UID) is None
    assert [c.call_id for c in live.calls("b")] == ["d-b"]
    live.release("d-a")
    assert live.on_channel("a", UID) is None
    assert live.on_channel("b", UID).call_id == "d-b"  # type: ignore[union-attr]
    assert live.concurrent("account", "a") == 1


# -- the screener --------------------------------------------------------------------------

@pytest.fixture
async def screener(tmp_path: Path) -> AsyncIterator[Screener]:
    store = AsyncStore(SQLiteStore(tmp_path / "og.db"))
    screener = Screener(store, parse_policy(POLICY))
    await screener.start()
    yield screener
    await screener.stop()
    await store.aclose()


def facts(pbx: str, channel: str = UID) -> ChannelFacts:
    return ChannelFacts(adapter="agi", channel_id=channel, channel_name=NAME,
                        dialed="13800138000", caller_id="01088886666", account=f"a-{pbx}",
                        pbx=pbx)


async def test_colliding_unique_ids_of_two_pbxes_are_two_calls_each_logged_with_its_pbx(
    screener: Screener,
) -> None:
    first = screener.screen(facts("a"))
    second = screener.screen(facts("b"))  # must not end the first as "screened again"
    assert first.allowed and second.allowed
    assert first.id == UID and second.id != UID  # the call log's key does not repeat
    assert screener.live_calls() == 2
    assert screener.call_on_channel("a", UID).call_id == first.id  # type: ignore[union-attr]
    assert screener.call_on_channel("b", UID).call_id == second.id  # type: ignore[union-attr]
    assert screener.ended(second.id, 16)
    assert screener.call_on_channel("a", UID) is not None  # the other PBX's call goes on
    await screener.store.flush_async()
    logged = {c.call.decision_id: c for c in screener.store.store.iter_calls()}
    assert (logged[first.id].call.pbx, logged[first.id].ended_at) == ("a", None)
    assert (logged[second.id].call.pbx, logged[second.id].cause) == ("b", 16)


async def test_a_restart_restores_each_call_on_its_own_pbx(tmp_path: Path) -> None:
    store = AsyncStore(SQLiteStore(tmp_path / "r.db"))
    first = Screener(store, parse_policy(POLICY))
    await first.start()
    a, b = first.screen(facts("a")), first.screen(facts("b"))
    await store.flush_async()
    await first.stop()
    await store.aclose()
    store = AsyncStore(SQLiteStore(tmp_path / "r.db"))
    second = Screener(store, parse_policy(POLICY))
    await second.start()
    try:
        assert second.call_on_channel("a", UID).call_id == a.id  # type: ignore[union-attr]
        assert second.call_on_channel("b", UID).call_id == b.id  # type: ignore[union-attr]
    finally:
        await second.stop()
        await store.aclose()


# -- AMI: one tracker per PBX --------------------------------------------------------------

class Outcomes:
    def __init__(self) -> None:
        self.live = InMemoryLiveCalls()
        self.ends: list[tuple[str, int | None, str | None]] = []

    def clock(self) -> float:
        return 500.0

    def answered(self, decision_id: str, at: float | None = None) -> None:
        pass

    def ended(self, decision_id: str, cause: int | None, at: float | None = None,
              note: str | None = None, answered_at: float | None = None) -> bool:
        if self.live.release(decision_id) is None:
            return False
        self.ends.append((decision_id, cause, note))
        return True


def test_one_pbxs_hangup_event_never_ends_another_pbxs_call_with_the_same_uniqueid() -> None:
    outcomes = Outcomes()
    outcomes.live.reserve(live_call("d-a", "a"))
    outcomes.live.reserve(live_call("d-b", "b"))
    on_b = OutcomeTracker(outcomes, pbx="b")
    on_b.on_event({"Event": "UserEvent", "UserEvent": ENDED_EVENT, "Uniqueid": UID,
                   "Cause": "16"})
    assert outcomes.ends == [("d-b", 16, None)]
    assert outcomes.live.on_channel("a", UID) is not None


def test_a_reconnecting_ami_reconciles_only_its_own_pbx() -> None:
    outcomes = Outcomes()
    outcomes.live.reserve(live_call("d-a", "a"))
    outcomes.live.reserve(live_call("d-b", "b"))
    on_a = OutcomeTracker(outcomes, pbx="a")
    assert on_a.reconcile(set(), asked_at=1000.0) == 1  # PBX a lists no channel at all
    assert outcomes.ends == [("d-a", None, UNKNOWN_WHILE_AWAY)]
    assert outcomes.live.on_channel("b", UID) is not None


# -- reports -------------------------------------------------------------------------------

def logged(i: int, pbx: str, verdict: str = "allow") -> LoggedCall:
    return LoggedCall(CallRecord(f"d{i}", UID, "ari", "t1", "a1", "+8610", f"+86138{i}",
                                 verdict, "", "ok" if verdict == "allow" else "dnc_listed",
                                 (), 5, 1_800_000_000.0 + i, pbx=pbx),
                      answered_at=None, ended_at=1_800_000_100.0 + i, duration=0.0)


def test_a_report_groups_calls_by_pbx() -> None:
    calls = [logged(1, "a"), logged(2, "b"), logged(3, "b", "block"), logged(4, "a")]
    report = build_report(calls, [], by=("pbx",))
    assert [(r["pbx"], r["attempts"], r["blocked"]) for r in report["rows"]] == [
        ("a", 2, 0), ("b", 2, 1)]
    assert report["total"]["attempts"] == 4


def test_a_call_row_spooled_before_the_pbx_column_is_read_with_an_empty_pbx(
    tmp_path: Path,
) -> None:
    from outguard.store.spool import CALL, Spool

    spool = Spool(tmp_path)
    old = ["d1", "c1", "ari", "t1", "a1", "+8610", "+86138", "allow", "", "ok", "", 5, 1.0]
    (tmp_path / Spool.FILE).write_text(f'{{"kind": "call", "row": {old!r}}}\n'.replace("'", '"'))
    assert spool.read() == [(CALL, (*old, None, None, ""))]  # purpose, campaign, pbx
    assert len(logged(1, "a").call.as_row()) == len(old) + 3
