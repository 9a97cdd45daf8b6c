"""The Stasis app's call handling against protocol-level fakes of ARI and the screener."""

from __future__ import annotations

import dataclasses
import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ari_app.app import StasisApp
from ari_app.client import AriError, ChannelGone
from ari_app.settings import CallSettings
from outguard import probes
from outguard.live import DEFAULT_PBX, UNKNOWN_AFTER_RESTART, InMemoryLiveCalls, LiveCall
from outguard.pbx_claims import PbxClaims
from outguard.service import Decision, ScreeningUnavailable
from outguard.store.aio import AsyncStore
from outguard.store.sqlite import SQLiteStore
from rules.model import CallAttempt, Verdict
from tests.waiting import eventually

ALLOW = Verdict(True, "", "ok", "allowed", destination_e164="+8613800138000")
SHADOWED = Verdict(True, "", "ok", "allowed", shadow=("quiet",))
EXEMPTED = Verdict(True, "consent", "exempt", "allowed by consent")
DNC = Verdict(False, "dnc", "dnc_listed", "on the do-not-call list", cause=21)
DNC_ANNOUNCED = Verdict(False, "dnc", "dnc_listed", "listed", cause=21, announcement="beep")


class FakeAri:
    """Records every request; ``gone`` channels answer 404."""

    app = "outguard"

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.gone: set[str] = set()
        self.app_channels: list[str] = []
        self.channel_map: dict[str, dict[str, Any]] = {}
        self.bridge_list: list[dict[str, Any]] = []
        self.on_play: Any = None
        self.fail_with: Exception | None = None  # every request raises it (Asterisk down)
        self.globals: dict[str, str] = {}
        self.cdr_answer: dict[str, str] = {}  # CDR(answer,u) by channel

    async def _do(self, *call: Any) -> None:
        await asyncio.sleep(0)
        self.calls.append(call)
        if self.fail_with is not None:
            raise self.fail_with
        if len(call) > 1 and call[1] in self.gone:
            raise ChannelGone("X", f"/channels/{call[1]}", 404, "Channel not found")

    async def set_vars(self, cid: str, variables: Any) -> None:
        await self._do("set_vars", cid, dict(variables))

    async def subscribe_channel(self, cid: str) -> None:
        await self._do("subscribe", cid)

    async def channel_var(self, cid: str, name: str) -> str:
        await self._do("var", cid, name)
        return self.cdr_answer.get(cid, "") if name == "CDR(answer,u)" else ""

    async def get_global(self, name: str) -> str:
        await self._do("get_global", name)
        return self.globals.get(name, "")

    async def set_global(self, name: str, value: str) -> None:
        await self._do("set_global", name)
        self.globals[name] = value

    async def set_event_filter(self, allowed: Any) -> None:
        await self._do("filter")

    async def continue_in_dialplan(self, cid: str, context: str, ext: str, prio: int) -> None:
        await self._do("continue", cid, context, ext, prio)

    async def hangup(self, cid: str, cause: int | None = None) -> None:
        await self._do("hangup", cid, cause)

    async def progress(self, cid: str) -> None:
        await self._do("progress", cid)

    async def answer(self, cid: str) -> None:
        await self._do("answer", cid)

    async def play(self, cid: str, media: str, playback: str) -> None:
        await self._do("play", cid, media)
        if self.on_play:
            self.on_play(playback)

    async def application(self) -> dict[str, Any]:
        return {"channel_ids": list(self.app_channels)}

    async def channels(self) -> list[dict[str, Any]]:
        return [c for cid, c in self.channel_map.items() if cid not in self.gone]

    async def bridges(self) -> list[dict[str, Any]]:
        return list(self.bridge_list)

    async def channel(self, cid: str) -> dict[str, Any]:
        if cid in self.gone or cid not in self.channel_map:
            raise ChannelGone("GET", f"/channels/{cid}", 404, "Channel not found")
        return self.channel_map[cid]

    def kinds(self, cid: str) -> list[str]:
        return [c[0] for c in self.calls if c[1] == cid]


class FakeScreener:
    """Decides ``verdict`` and holds allowed calls in a real live-call registry."""

    snapshot = object()

    def __init__(self, verdict: Verdict = ALLOW, error: Exception | None = None,
                 prefix: str = "d-") -> None:
        self.verdict = verdict
        self.error = error
        self.live = InMemoryLiveCalls()
        self.prefix = prefix  # "": the decision id is the channel's unique id
        self.answered_ids: list[str] = []
        self.answered_at: list[float | None] = []
        self.ended_ids: list[tuple[str, int | None]] = []
        self.seen: list[Any] = []
        self.notes: list[str | None] = []
        #: the calls screening failed for: (channel, reason, failure policy, cause)
        self.failures: list[tuple[str, str, str, int | None]] = []
        self.now = 1_800_000_100.0  # the registry's clock: a millisecond on at every look

    async def wait_ready(self, timeout_s: float) -> bool:
        return self.snapshot is not None

    reserves = False  # embedded mode: screen_reserving is never called

    async def screen_reserving(self, facts: Any) -> Decision:
        raise AssertionError("embedded mode does not reserve")

    def screen(self, facts: Any) -> Decision:
        self.seen.append(facts)
        if self.error:
            raise self.error
        attempt = CallAttempt("t", "a", facts.caller_id, facts.dialed,
                              datetime.now(UTC), call_id=self.prefix + facts.channel_id)
        if self.verdict.allowed:
            self.live.reserve(LiveCall(
                call_id=attempt.call_id, channel_id=facts.channel_id, adapter="ari",
                tenant="t", account="a", caller_id=facts.caller_id,
                destination=facts.dialed, started=self.clock(), pbx=facts.pbx))
        return Decision(self.prefix + facts.channel_id, self.verdict, attempt, 10)

    def failed(self, facts: Any, reason: str, policy: str, cause: int | None = None) -> str:
        """As the Screener: the row (here: ``failures``); a fail-open call is live."""
        call_id = self.prefix + facts.channel_id
        self.failures.append((facts.channel_id, reason, policy, cause))
        if policy == "fail-open":
            self.live.reserve(LiveCall(
                call_id=call_id, channel_id=facts.channel_id, adapter="ari", tenant="t",
                account="a", caller_id=facts.caller_id, destination=facts.dialed,
                started=self.clock(), pbx=facts.pbx))
        return call_id

    async def failed_durably(self, facts: Any, reason: str, policy: str,
                             cause: int | None = None) -> str:
        self.durable = True
        return self.failed(facts, reason, policy, cause)

    def call_on_channel(self, pbx: str, channel_id: str) -> LiveCall | None:
        return self.live.on_channel(pbx, channel_id)

    def answered(self, decision_id: str, at: float | None = None) -> None:
        if self.live.answered(decision_id, 1.0) is not None:
            self.answered_ids.append(decision_id)
            self.answered_at.append(at)

    def clock(self) -> float:
        self.now += 0.001
        return self.now

    def ended(self, decision_id: str, cause: int | None, at: float | None = None,
              note: str | None = None, answered_at: float | None = None) -> bool:
        if self.live.release(decision_id) is None:
            return False
        self.ended_ids.append((decision_id, cause))
        self.notes.append(note)
        return True


def start(cid: str, number: str = "13800138000", *extra: str, **vars: str) -> dict[str, Any]:
    return {"type": "StasisStart", "args": [number, *extra],
            "channel": {"id": cid, "name": "PJSIP/agent-00000001", "state": "Ring",
                        "caller": {"number": "01088886666"}, "channelvars": vars}}


class FakeTracker:
    def __init__(self) -> None:
        self.tracked: list[tuple[str, str]] = []

    def track(self, uniqueid: str) -> None:
        self.tracked.append((uniqueid, uniqueid))


def make(screener: FakeScreener, tracker: FakeTracker | None = None,
         **settings: Any) -> tuple[StasisApp, FakeAri]:
    ari = FakeAri()
    app = StasisApp(ari, screener, CallSettings(**settings), tracker)  # type: ignore[arg-type]
    app.dialplan.seen(app.dialplan.expected)  # connected: OUTGUARD_PBX checked, as needed
    return app, ari


async def drain(app: StasisApp) -> None:
    await eventually(lambda: not app._tasks, "the call tasks to finish", interval=0.001)


async def test_an_allowed_call_with_ami_is_one_request_into_the_allow_context() -> None:
    tracker = FakeTracker()
    app, ari = make(FakeScreener(prefix=""), tracker)
    app.dispatch(start("c1", OUTGUARD_ACCOUNT="seat-1"))
    await drain(app)
    assert ari.calls == [("continue", "c1", "outguard-allow", "13800138000", 1)]
    assert tracker.tracked == [("c1", "c1")]
    assert app.handling.count == 1


@pytest.mark.parametrize("verdict", [SHADOWED, EXEMPTED], ids=["shadow", "exempted"])
async def test_a_shadow_flagged_or_exempted_allow_costs_one_more_request(
    verdict: Verdict
) -> None:
    tracker = FakeTracker()
    app, ari = make(FakeScreener(verdict, prefix=""), tracker)
    app.dispatch(start("c1"))
    await drain(app)
    assert ari.kinds("c1") == ["set_vars", "continue"]
    assert ari.calls[-1] == ("continue", "c1", "outguard-dial", "13800138000", 1)
    variables = ari.calls[0][2]
    assert variables["OUTGUARD_VERDICT"] == "allow"
    assert variables["OUTGUARD_DECISION_ID"] == "c1"
    assert tracker.tracked == [("c1", "c1")]


class ClusterScreener(FakeScreener):
    """Cluster mode's ids: the unique id at the PBX."""

    reserves = True

    async def screen_reserving(self, facts: Any) -> Decision:
        return self.screen(facts)

    def screen(self, facts: Any) -> Decision:
        decision = super().screen(facts)
        return dataclasses.replace(decision, id=f"{facts.channel_id}@{facts.pbx}")


@pytest.mark.parametrize(("found", "requests"), [
    ("", ["continue"]), ("sh-1", ["set_vars", "continue"]), (None, ["set_vars", "continue"])],
    ids=["set-by-outguard", "another-pbxs-name", "unreadable"])
async def test_in_cluster_mode_a_plain_allow_is_one_request_once_the_dialplan_knows_the_pbx(
    found: str | None, requests: list[str],
) -> None:
    """At connect the app reads OUTGUARD_PBX and sets it when empty; [outguard-allow] then
    builds <uniqueid>@<pbx> itself. A global naming another PBX is never overwritten: it
    is flagged, and calls get their decision id from outguard (one more request)."""
    ari = FakeAri()
    ari.globals = {} if found is None else {"OUTGUARD_PBX": found}
    app = StasisApp(ari, ClusterScreener(prefix=""), CallSettings(), FakeTracker(),  # type: ignore[arg-type]
                    pbx="bj-1")
    if found is None:
        ari.fail_with = AriError("GET", "/asterisk/variable", 500, "boom")
    app._on_open()
    await drain(app)
    ari.fail_with = None
    ari.calls.clear()
    app.dispatch(start("c1"))
    await drain(app)
    assert ari.kinds("c1") == requests
    if requests == ["continue"]:
        assert ari.globals == {"OUTGUARD_PBX": "bj-1", "OUTGUARD_PBX_SET": "bj-1"}
        assert app.dialplan.problem == ""
    else:
        assert ari.calls[0][2]["OUTGUARD_DECISION_ID"] == "c1@bj-1"
        assert app.dialplan.problem and ari.globals.get("OUTGUARD_PBX") == found


async def test_a_decision_id_other_than_the_unique_id_is_set_on_the_channel() -> None:
    app, ari = make(FakeScreener(prefix="d-"), FakeTracker())
    app.dispatch(start("c1"))
    await drain(app)
    assert ari.kinds("c1") == ["set_vars", "continue"]
    assert ari.calls[0][2]["OUTGUARD_DECISION_ID"] == "d-c1"


async def test_a_failed_continue_hangs_the_channel_up_instead_of_leaving_it_in_stasis() -> None:
    app, ari = make(FakeScreener(prefix=""), FakeTracker())

    async def broken(*_: Any) -> None:
        raise AriError("POST", "/channels/c1/continue", 500, "boom")

    ari.continue_in_dialplan = broken  # type: ignore[method-assign]
    app.dispatch(start("c1"))
    await drain(app)
    assert ari.calls == [("hangup", "c1", 34)]


async def test_without_ami_the_allowed_call_is_followed_by_subscription() -> None:
    app, ari = make(FakeScreener(prefix=""))
    app.dispatch(start("c1"))
    await drain(app)
    assert ari.kinds("c1") == ["subscribe", "continue"]
    assert ari.calls[-1] == ("continue", "c1", "outguard-allow", "13800138000", 1)


async def test_allowed_call_gets_its_variables_then_continues_to_the_dial_context() -> None:
    app, ari = make(FakeScreener())
    app.dispatch(start("c1", OUTGUARD_ACCOUNT="seat-1"))
    await drain(app)
    assert sorted(ari.kinds("c1")[:2]) == ["set_vars", "subscribe"]
    assert ari.calls[-1] == ("continue", "c1", "outguard-dial", "13800138000", 1)
    variables = next(c[2] for c in ari.calls if c[0] == "set_vars")
    assert variables["OUTGUARD_VERDICT"] == "allow"
    assert variables["OUTGUARD_DECISION_ID"] == "d-c1"
    assert app.handling.count == 1


async def test_channel_variables_reach_the_screener() -> None:
    screener = FakeScreener()
    app, _ = make(screener)
    app.dispatch(start("c1", OUTGUARD_ACCOUNT="seat-1", OUTGUARD_PURPOSE="service"))
    await drain(app)
    assert screener.seen[0].account == "seat-1" and screener.seen[0].purpose == "service"


async def test_answer_and_hangup_of_a_continued_call_are_recorded_once() -> None:
    screener = FakeScreener()
    app, _ = make(screener)
    app.dispatch(start("c1"))
    await drain(app)
    up = {"type": "ChannelStateChange", "channel": {"id": "c1", "state": "Up"}}
    destroyed = {"type": "ChannelDestroyed", "channel": {"id": "c1"}, "cause": 16}
    for event in (up, destroyed, destroyed):
        app.dispatch(event)
    assert screener.answered_ids == ["d-c1"]
    assert screener.ended_ids == [("d-c1", 16)]


async def test_blocked_call_is_hung_up_with_the_verdicts_cause() -> None:
    app, ari = make(FakeScreener(DNC))
    app.dispatch(start("c1"))
    await drain(app)
    assert ari.kinds("c1") == ["set_vars", "hangup"]
    assert ari.calls[0][2]["OUTGUARD_REASON"] == "dnc_listed"
    assert ari.calls[0][2]["OUTGUARD_CAUSE"] == "21"
    assert ari.calls[-1] == ("hangup", "c1", 21)


async def test_announcement_plays_as_early_media_and_the_hangup_waits_for_it() -> None:
    app, ari = make(FakeScreener(DNC_ANNOUNCED))
    ari.on_play = lambda pb: asyncio.get_running_loop().call_later(
        0.01, app.dispatch, {"type": "PlaybackFinished", "playback": {"id": pb}})
    app.dispatch(start("c1"))
    await drain(app)
    assert ari.kinds("c1") == ["set_vars", "progress", "play", "hangup"]
    assert ("play", "c1", "sound:beep") in ari.calls


async def test_announcement_after_answer_when_configured() -> None:
    app, ari = make(FakeScreener(DNC_ANNOUNCED), announce="answer", announce_timeout_s=0.01)
    app.dispatch(start("c1"))
    await drain(app)
    assert ari.kinds("c1") == ["set_vars", "answer", "play", "hangup"]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param("closed", ("hangup", "c1", 34), id="fail-closed-hangs-up-with-34"),
        pytest.param("open", ("continue", "c1", "outguard-dial", "13800138000", 1),
                     id="fail-open-continues"),
    ],
)
async def test_screening_error_applies_the_failure_policy(
    mode: str, expected: tuple[Any, ...]
) -> None:
    failures = probes.SCREENING_FAILURES.labels("ari", mode)
    before = failures._value.get()
    screener = FakeScreener(error=RuntimeError("boom"))
    app, ari = make(screener, fail_mode=mode)
    app.dispatch(start("c1"))
    await drain(app)
    assert ari.calls[-1] == expected
    assert failures._value.get() == before + 1  # outguard_screening_failures_total
    # the call has its call-log row: verdict failed, the reason and the policy applied
    assert screener.failures == [("c1", "screening_error", f"fail-{mode}",
                                  34)]
    assert (screener.call_on_channel(DEFAULT_PBX, "c1") is not None) == (mode == "open")
    assert ari.calls[0][0] == "set_vars"
    assert ari.calls[0][2]["OUTGUARD_DECISION_ID"] == "d-c1"


async def test_no_snapshot_within_the_budget_fails_closed() -> None:
    screener = FakeScreener(error=ScreeningUnavailable("no snapshot"))
    screener.snapshot = None  # type: ignore[assignment]
    app, ari = make(screener, budget_ms=20)
    app.dispatch(start("c1"))
    await drain(app)
    assert ari.calls[-1] == ("hangup", "c1", 34)
    assert screener.failures == [("c1", "screening_unavailable", "fail-closed", 34)]


class NeverReady(FakeScreener):
    """A snapshot that never comes (a store that cannot be read), with a long budget."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = asyncio.Event()

    async def wait_ready(self, timeout_s: float) -> bool:
        self.waiting.set()
        await asyncio.Event().wait()
        return False


@pytest.mark.parametrize("mode", ["closed", "open"])
async def test_stopping_mid_decision_answers_the_call_and_logs_it(mode: str) -> None:
    screener = NeverReady()
    app, ari = make(screener, budget_ms=60_000, fail_mode=mode)
    app.dispatch(start("c1"))
    await screener.waiting.wait()
    await app.stop(grace_s=0.01)
    expected = (("hangup", "c1", 34) if mode == "closed"
                else ("continue", "c1", "outguard-dial", "13800138000", 1))
    assert ari.calls[-1] == expected  # the caller is not left waiting in Stasis
    assert screener.failures == [("c1", "outguard_stopping", f"fail-{mode}", 34)]


async def test_stopping_mid_decision_a_channel_already_gone_is_logged_gone() -> None:
    screener = NeverReady()
    app, ari = make(screener, budget_ms=60_000)
    app.dispatch(start("c1"))
    await screener.waiting.wait()
    ari.gone.add("c1")
    await app.stop(grace_s=0.01)
    assert screener.failures == [("c1", "channel_gone", "", None)]


async def test_stopping_with_asterisk_unreachable_leaves_the_channel_to_the_next_outguard(
) -> None:
    screener = NeverReady()
    app, ari = make(screener, budget_ms=60_000)
    app.dispatch(start("c1"))
    await screener.waiting.wait()
    ari.fail_with = AriError("POST", "/channels/c1/variables", 500, "down")
    await app.stop(grace_s=0.01)
    assert screener.failures == []  # it screens it (one row) when it reconciles


async def test_a_channel_gone_while_failing_open_keeps_its_row_and_ends() -> None:
    screener = FakeScreener(error=RuntimeError("boom"))
    app, ari = make(screener, fail_mode="open")
    ari.gone.add("c1")
    app.dispatch(start("c1"))
    await drain(app)
    assert screener.failures == [("c1", "screening_error", "fail-open", 34)]
    assert screener.ended_ids == [("d-c1", None)]  # its slots given back, its row closed


async def test_channel_gone_before_continue_is_released_and_does_not_raise() -> None:
    screener = FakeScreener()
    app, ari = make(screener)
    ari.gone.add("c1")
    app.dispatch(start("c1"))
    await drain(app)
    assert screener.ended_ids == [("d-c1", None)]


async def test_channel_destroyed_during_the_decision_is_released_exactly_once() -> None:
    screener = FakeScreener()
    app, ari = make(screener)
    app.dispatch(start("c1"))
    app.dispatch({"type": "ChannelDestroyed", "channel": {"id": "c1"}, "cause": 16})
    ari.gone.add("c1")
    await drain(app)
    assert screener.ended_ids == [("d-c1", None)]
    assert "continue" not in ari.kinds("c1")


async def test_calls_are_handled_concurrently_not_behind_each_other() -> None:
    app, ari = make(FakeScreener())
    release = asyncio.Event()
    original = ari.set_vars

    async def slow_for_c1(cid: str, variables: Any) -> None:
        if cid == "c1":
            await release.wait()
        await original(cid, variables)

    ari.set_vars = slow_for_c1  # type: ignore[method-assign]
    app.dispatch(start("c1"))
    app.dispatch(start("c2"))
    await eventually(lambda: ("continue", "c2", "outguard-dial", "13800138000", 1) in ari.calls,
                     "c2's continue", interval=0.001)
    assert "continue" not in ari.kinds("c1")
    release.set()
    await drain(app)


async def test_orphaned_outbound_leg_is_hung_up() -> None:
    app, ari = make(FakeScreener())
    app.dispatch(start("og-out-x", "13800138000"))
    app.dispatch({"type": "StasisStart", "args": ["outbound", "c9"],
                  "channel": {"id": "og-out-y", "name": "PJSIP/carrier-00000002"}})
    await drain(app)
    assert ("hangup", "og-out-y", 16) in ari.calls


async def test_reconcile_screens_waiting_channels_and_leaves_answered_unknown_ones_alone(
) -> None:
    screener = FakeScreener()
    app, ari = make(screener)
    ari.app_channels = ["w1", "up1", "dialing1", "gone1"]
    ari.channel_map = {
        "w1": {"id": "w1", "name": "PJSIP/agent-00000003", "state": "Ring",
               "caller": {"number": "01088886666"},
               "dialplan": {"context": "outguard-ari", "exten": "13800138000",
                            "app_name": "Stasis"}},
        "up1": {"id": "up1", "name": "PJSIP/agent-00000004", "state": "Up",
                "dialplan": {"context": "outguard-ari-bridge", "exten": "1",
                             "app_name": "Stasis"}},
        "dialing1": {"id": "dialing1", "name": "PJSIP/agent-00000005", "state": "Up",
                     "dialplan": {"context": "outguard-dial", "exten": "1",
                                  "app_name": "Dial"}},
    }
    await app.reconcile()
    await drain(app)
    assert ("continue", "w1", "outguard-dial", "13800138000", 1) in ari.calls
    assert [c for c in ari.calls if c[0] == "hangup"] == []  # never hung up for being unknown
    assert [f.dialed for f in screener.seen] == ["13800138000"]
    # waiting in Stasis: a decision it may have had was never carried out (Screener._new_id)
    assert [f.waiting for f in screener.seen] == [True]


async def test_a_restored_call_still_waiting_in_stasis_is_screened_again_not_ended() -> None:
    """outguard died between the decision and the continue: the new decision replaces the
    undone one (the Screener drops it), so the app does not close it as a call that ended."""
    screener = FakeScreener(prefix="")
    app, ari = make(screener)
    restored(screener, "w1", "w1")
    ari.app_channels = ["w1"]
    ari.channel_map = {"w1": {"id": "w1", "name": "PJSIP/agent-00000003", "state": "Ring",
                              "caller": {"number": "01088886666"},
                              "dialplan": {"context": "outguard-ari", "exten": "13800138000",
                                           "app_name": "Stasis"}}}
    await app.reconcile()
    await drain(app)
    assert screener.notes == [] and [f.waiting for f in screener.seen] == [True]
    assert ("continue", "w1", "outguard-allow", "13800138000", 1) in ari.calls


async def test_a_fresh_stasis_start_is_not_a_channel_found_waiting() -> None:
    screener = FakeScreener()
    app, ari = make(screener)
    app.dispatch(start("c1"))
    await drain(app)
    assert [f.waiting for f in screener.seen] == [False]


class SlowListingAri(FakeAri):
    """Asterisk under load: a listing of channels is taken when it is asked for and reaches
    outguard once ``answer`` is set (calls go on meanwhile); a continue waits for
    ``continuing`` and takes the channel out of Stasis; a second continue is refused, as
    Asterisk refuses to continue a channel no longer in Stasis (409)."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = asyncio.Event()
        self.continuing = asyncio.Event()
        self.continuing.set()
        self.asked = False

    def waiting_in_stasis(self, cid: str) -> None:
        self.app_channels.append(cid)
        self.channel_map[cid] = {
            "id": cid, "name": "PJSIP/agent-00000007", "state": "Ring",
            "caller": {"number": "01088886666"},
            "dialplan": {"context": "outguard-ari", "exten": "13800138000",
                         "app_name": "Stasis"}}

    async def channels(self) -> list[dict[str, Any]]:
        # as they are now (nested dicts copied: a continue changes the channel's dialplan)
        listed = [{k: dict(v) if isinstance(v, dict) else v for k, v in c.items()}
                  for c in await super().channels()]
        self.asked = True
        await self.answer.wait()
        return listed

    async def continue_in_dialplan(self, cid: str, context: str, ext: str, prio: int) -> None:
        await self.continuing.wait()
        channel = self.channel_map.get(cid)
        if channel is not None and channel["dialplan"]["app_name"] != "Stasis":
            self.calls.append(("continue", cid, context, ext, prio))
            raise AriError("POST", f"/channels/{cid}/continue", 409,
                           "Channel not in Stasis application")
        await super().continue_in_dialplan(cid, context, ext, prio)
        if channel is not None:
            channel["dialplan"] = {"context": context, "exten": ext, "app_name": "Dial"}


def make_slow(screener: FakeScreener) -> tuple[StasisApp, SlowListingAri]:
    ari = SlowListingAri()
    app = StasisApp(ari, screener, CallSettings(), None)  # type: ignore[arg-type]
    app.dialplan.seen(app.dialplan.expected)
    return app, ari


async def test_a_call_decided_while_a_reconcile_lists_channels_is_not_ended_as_gone() -> None:
    """The listing was asked for before the call's StasisStart: its channel is not in it,
    which does not make it a call that ended while outguard was away (its slots released,
    its row closed with an unknown end while it is up)."""
    screener = FakeScreener()
    app, ari = make_slow(screener)
    reconciling = asyncio.create_task(app.reconcile())
    await eventually(lambda: ari.asked, "the listing asked for")
    app.dispatch(start("c9"))
    await eventually(lambda: ("continue", "c9", "outguard-dial", "13800138000", 1) in ari.calls,
                     "the call continued")
    await drain(app)
    ari.answer.set()
    await reconciling
    await drain(app)
    assert screener.ended_ids == [] and screener.notes == []
    assert [c.channel_id for c in screener.live.calls()] == ["c9"]
    app.dispatch({"type": "ChannelDestroyed", "channel": {"id": "c9"}, "cause": 16})
    assert screener.ended_ids == [("d-c9", 16)]  # its real end, with its cause


async def test_a_call_continued_after_the_listing_was_taken_is_not_screened_again() -> None:
    """Decided before the reconcile asked, continued after Asterisk listed it in Stasis:
    the listing is old news. Screened again, its second continue was refused (the
    channel had left Stasis) and the live call was hung up for it."""
    screener = FakeScreener()
    app, ari = make_slow(screener)
    ari.waiting_in_stasis("c9")
    ari.continuing.clear()
    app.dispatch(start("c9"))
    await eventually(lambda: screener.live.on_channel(DEFAULT_PBX, "c9") is not None,
                     "the call decided")
    reconciling = asyncio.create_task(app.reconcile())
    await eventually(lambda: ari.asked, "the listing taken")
    ari.continuing.set()
    await drain(app)
    assert ari.channel_map["c9"]["dialplan"]["app_name"] == "Dial"
    ari.answer.set()
    await reconciling
    await drain(app)
    assert [c for c in ari.calls if c[0] == "hangup"] == []
    assert [c[0] for c in ari.calls if c[1] == "c9"].count("continue") == 1
    assert len(screener.seen) == 1 and screener.ended_ids == []


@pytest.mark.parametrize("how", ["blocked", "gone"])
async def test_a_channel_answered_while_the_reconcile_lists_is_not_found_waiting(
    how: str,
) -> None:
    """Listed waiting in Stasis, then its StasisStart handled before the listing came back:
    hung up (blocked) or found gone (404), its ChannelDestroyed not here yet. Screening it
    again would write a second decision for one attempt (a phantom call in the call log,
    in the risk figures and the reports) and hang it up twice."""
    screener = FakeScreener(DNC if how == "blocked" else ALLOW)
    app, ari = make_slow(screener)
    ari.waiting_in_stasis("c7")
    reconciling = asyncio.create_task(app.reconcile())
    await eventually(lambda: ari.asked, "the listing taken")
    if how == "gone":
        ari.gone.add("c7")
    app.dispatch(start("c7"))
    await drain(app)
    ari.answer.set()
    await reconciling
    await drain(app)
    assert len(screener.seen) == 1
    assert len([c for c in ari.calls if c[0] == "hangup"]) == (how == "blocked")


def restored(screener: FakeScreener, cid: str, call_id: str = "", *,
             answered: bool = False) -> LiveCall:
    call = LiveCall(call_id=call_id or "d-" + cid, channel_id=cid, adapter="ari", tenant="t",
                    account="a", caller_id="01088886666", destination="13800138000",
                    started=time.time() - 5, answered_at=time.time() - 1 if answered else None)
    screener.live.restore([call])
    restored_call = screener.live.get(call.call_id)
    assert restored_call is not None
    return restored_call


async def test_after_a_restart_a_continued_call_is_followed_again_not_hung_up() -> None:
    screener = FakeScreener()
    app, ari = make(screener)
    restored(screener, "c1")
    ari.app_channels = ["c1"]  # still listed: outguard subscribed to it before
    ari.channel_map = {"c1": {"id": "c1", "state": "Up",
                           "dialplan": {"context": "outguard-dial", "app_name": "Dial"}}}
    await app.reconcile()
    await drain(app)
    assert ari.calls == [("subscribe", "c1"), ("var", "c1", "CDR(answer,u)")]
    assert screener.answered_ids == ["d-c1"]
    assert screener.answered_at == [None]  # Asterisk told nothing: the reconcile's own time
    app.dispatch({"type": "ChannelDestroyed", "channel": {"id": "c1"}, "cause": 16})
    assert screener.ended_ids == [("d-c1", 16)]
    assert screener.notes == [None]


@pytest.mark.parametrize(
    ("cdr", "answered_at"),
    [
        pytest.param("1800000040.250000", 1_800_000_040.25, id="the-cdrs-answer"),
        pytest.param("0", None, id="not-answered-per-cdr"),
        pytest.param("", None, id="nothing"),
        pytest.param("1800000900.0", None, id="in-the-future"),
    ],
)
async def test_after_a_restart_an_up_call_unanswered_in_the_log_takes_its_cdr_answer_time(
    cdr: str, answered_at: float | None,
) -> None:
    """outguard was killed before the answer reached the call log: the answer time is the
    channel's CDR answer (the Dial that connected it), not the time outguard first sees it
    up (later: a call held 6 s logged as 0.6 s), when Asterisk's figure is a sane one."""
    screener = FakeScreener()
    app, ari = make(screener)
    screener.live.restore([LiveCall(
        call_id="d-c1", channel_id="c1", adapter="ari", tenant="t", account="a",
        caller_id="01088886666", destination="13800138000", started=1_800_000_030.0)])
    ari.app_channels = ["c1"]
    ari.channel_map = {"c1": {"id": "c1", "state": "Up",
                           "dialplan": {"context": "outguard-dial", "app_name": "Dial"}}}
    ari.cdr_answer["c1"] = cdr
    await app.reconcile()
    await drain(app)
    assert screener.answered_at == [answered_at]


async def test_after_a_restart_a_call_whose_channel_is_gone_closes_as_unknown() -> None:
    screener = FakeScreener()
    app, ari = make(screener)
    restored(screener, "c1")
    await app.reconcile()
    assert screener.ended_ids == [("d-c1", None)]
    assert screener.notes == [UNKNOWN_AFTER_RESTART]
    assert len(screener.live) == 0


class FakeBridgeAri(FakeAri):
    """Bridge-mode requests; addChannel fails as when the callee hung up meanwhile."""

    async def ring(self, cid: str) -> None:
        await self._do("ring", cid)

    async def originate(self, endpoint: str, **kw: Any) -> dict[str, Any]:
        await self._do("originate", kw["channel_id"], endpoint)
        return {"id": kw["channel_id"]}

    async def create_bridge(self, bridge_id: str) -> None:
        await self._do("create_bridge", bridge_id)

    async def add_to_bridge(self, bridge_id: str, *channels: str) -> None:
        await self._do("add_to_bridge", bridge_id)
        from ari_app.client import AriError
        raise AriError("POST", f"/bridges/{bridge_id}/addChannel", 422, "Channel not in Stasis")

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self._do("destroy_bridge", bridge_id)


class BrokenAddAri(FakeBridgeAri):
    """addChannel fails with something no failure path names (a defect)."""

    async def add_to_bridge(self, bridge_id: str, *channels: str) -> None:
        await self._do("add_to_bridge", bridge_id)
        raise KeyError("channels")


@pytest.mark.parametrize("fake", [FakeBridgeAri, BrokenAddAri],
                         ids=["asterisk-refuses", "any-other-failure"])
async def test_bridge_failure_after_the_answer_hangs_up_both_legs(fake: type[FakeAri]) -> None:
    screener = FakeScreener()
    ari = fake()
    app = StasisApp(ari, screener, CallSettings())  # type: ignore[arg-type]
    app.dispatch(start("c1", "13800138000", "bridge"))
    # wait for the originate, then the callee answers
    await eventually(lambda: any(c[0] == "originate" for c in ari.calls), "the originate",
                     interval=0.001)
    outbound = next(c[1] for c in ari.calls if c[0] == "originate")
    app.dispatch({"type": "StasisStart", "args": ["outbound", "c1"],
                  "channel": {"id": outbound, "name": "PJSIP/carrier-00000002"}})
    await drain(app)
    assert ("hangup", "c1", 16) in ari.calls
    assert ("hangup", outbound, 16) in ari.calls
    assert screener.ended_ids == [("d-c1", None)]


class FakeRestartAri(FakeBridgeAri):
    """Bridge-mode requests that succeed."""

    async def add_to_bridge(self, bridge_id: str, *channels: str) -> None:
        await self._do("add_to_bridge", bridge_id, *channels)


async def joined(ari: FakeAri, *legs: str) -> str:
    """Wait for the addChannel of these legs; the bridge they joined."""
    call = await eventually(
        lambda: next((c for c in ari.calls if c[0] == "add_to_bridge" and c[2:] == legs), None),
        f"{legs} in a bridge", interval=0.001)
    return str(call[1])


def bridged_call(ari: FakeAri, caller: str, call_id: str, *, outbound_state: str = "Up",
                 bridged: bool = True) -> None:
    out = f"og-out-{call_id}"
    ari.channel_map = {
        caller: {"id": caller, "state": "Up" if bridged else "Ringing",
                 "dialplan": {"context": "outguard-ari-bridge", "app_name": "Stasis"}},
        out: {"id": out, "state": outbound_state, "dialplan": {"app_name": "Stasis"}},
    }
    ari.app_channels = [caller, out]
    if bridged:
        ari.bridge_list = [{"id": f"og-br-{call_id}", "channels": [caller, out]}]


def restarted_with_bridge_call(
        *, answered: bool = False, outbound_state: str = "Up", bridged: bool = True,
) -> tuple[FakeScreener, FakeRestartAri, StasisApp]:
    """A new outguard's app whose call log restored bridge call d1 (caller c1, carrier leg
    og-out-d1), as Asterisk lists them (see ``bridged_call``)."""
    screener = FakeScreener()
    ari = FakeRestartAri()
    app = StasisApp(ari, screener, CallSettings())  # type: ignore[arg-type]
    restored(screener, "c1", "d1", answered=answered)
    bridged_call(ari, "c1", "d1", outbound_state=outbound_state, bridged=bridged)
    return screener, ari, app


async def test_after_a_restart_a_bridged_call_is_followed_and_ends_with_its_cause() -> None:
    screener, ari, app = restarted_with_bridge_call(answered=True)
    await app.reconcile()
    await asyncio.sleep(0.01)
    assert [c for c in ari.calls if c[0] == "hangup"] == []  # the restart cut nothing
    app.dispatch({"type": "ChannelDestroyed", "channel": {"id": "og-out-d1"}, "cause": 17})
    await eventually(lambda: ("hangup", "c1", 16) in ari.calls, "the other leg hung up",
                     interval=0.001)  # the callee left: the caller is let go
    app.dispatch({"type": "StasisEnd", "channel": {"id": "c1"}})
    await drain(app)
    assert screener.ended_ids == [("d1", 17)]
    # both legs left the bridge the earlier process made: it is kept for the next call
    assert "og-br-d1" in app.bridges and ("destroy_bridge", "og-br-d1") not in ari.calls


async def test_after_a_restart_a_ringing_bridge_call_is_bridged_when_the_callee_answers(
) -> None:
    screener, ari, app = restarted_with_bridge_call(outbound_state="Ringing", bridged=False)
    await app.reconcile()
    app.dispatch({"type": "StasisStart", "args": ["outbound", "c1"],
                  "channel": {"id": "og-out-d1", "name": "PJSIP/carrier-00000002"}})
    await joined(ari, "c1", "og-out-d1")
    assert screener.answered_ids == ["d1"]
    app.dispatch({"type": "ChannelDestroyed", "channel": {"id": "c1"}, "cause": 16})
    await eventually(lambda: ("hangup", "og-out-d1", 16) in ari.calls, "the other leg hung up",
                     interval=0.001)
    app.dispatch({"type": "StasisEnd", "channel": {"id": "og-out-d1"}})
    await drain(app)
    assert screener.ended_ids == [("d1", 16)]


async def test_an_answered_carrier_leg_of_a_restored_call_is_bridged_not_hung_up() -> None:
    screener = FakeScreener()
    ari = FakeRestartAri()
    app = StasisApp(ari, screener, CallSettings())  # type: ignore[arg-type]
    restored(screener, "c1", "d1")
    app.dispatch({"type": "StasisStart", "args": ["outbound", "c1"],
                  "channel": {"id": "og-out-d1", "name": "PJSIP/carrier-00000002"}})
    await joined(ari, "c1", "og-out-d1")
    assert ("hangup", "og-out-d1", 16) not in ari.calls
    await app.stop()


async def test_stopping_outguard_leaves_a_bridged_call_up() -> None:
    screener, ari, app = restarted_with_bridge_call(answered=True)
    await app.reconcile()
    await asyncio.sleep(0.01)
    await app.stop()  # SIGTERM: the call tasks are cancelled
    assert [c[0] for c in ari.calls if c[0] in ("hangup", "destroy_bridge")] == []
    assert screener.ended_ids == []  # still live: the next outguard follows it


async def place_bridged_call(app: StasisApp, ari: FakeAri, caller: str) -> str:
    """A new bridge-mode call, up to both legs in a bridge; the bridge."""
    app.dispatch(start(caller, "13800138000", "bridge"))
    await eventually(lambda: any(c[0] == "originate" and c[1] == f"og-out-d-{caller}"
                                 for c in ari.calls), "the originate", interval=0.001)
    app.dispatch({"type": "StasisStart", "args": ["outbound", caller],
                  "channel": {"id": f"og-out-d-{caller}", "name": "PJSIP/carrier-1"}})
    return await joined(ari, caller, f"og-out-d-{caller}")


async def test_a_bridge_is_kept_for_the_next_call_once_both_legs_left_it() -> None:
    """Six requests per answered call: no bridge is created or destroyed per call."""
    screener = FakeScreener()
    ari = FakeRestartAri()
    app = StasisApp(ari, screener, CallSettings())  # type: ignore[arg-type]
    first = await place_bridged_call(app, ari, "c1")
    app.dispatch({"type": "ChannelDestroyed", "channel": {"id": "c1"}, "cause": 16})
    await eventually(lambda: ("hangup", "og-out-d-c1", 16) in ari.calls, "the other leg hung up",
                     interval=0.001)
    app.dispatch({"type": "StasisEnd", "channel": {"id": "og-out-d-c1"}})
    await drain(app)
    assert first in app.bridges
    before = len(ari.calls)
    second = await place_bridged_call(app, ari, "c2")
    assert second == first
    placed = [c[0] for c in ari.calls[before:]]  # + the hangup of the other leg at the end
    assert sorted(placed[:3]) == ["originate", "ring", "set_vars"]  # sent together
    assert placed[3:] == ["answer", "add_to_bridge"]
    assert "destroy_bridge" not in [c[0] for c in ari.calls]
    await app.stop()


async def test_a_bridge_whose_legs_are_not_seen_leaving_is_destroyed_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ari_app.bridge.LEAVE_WAIT_S", 0.01)
    screener = FakeScreener()
    ari = FakeRestartAri()
    app = StasisApp(ari, screener, CallSettings())  # type: ignore[arg-type]
    bridge = await place_bridged_call(app, ari, "c1")
    app.dispatch({"type": "ChannelDestroyed", "channel": {"id": "c1"}, "cause": 16})
    await drain(app)  # the carrier leg never reports leaving
    assert ("destroy_bridge", bridge) in ari.calls and bridge not in app.bridges


async def test_killed_between_the_answer_and_the_join_the_call_is_bridged_after_a_restart(
) -> None:
    """kill -9 after the caller was answered and a bridge created, before addChannel: the
    new process pools that empty bridge and joins both legs into it (no second answer,
    no bridge created under an id that exists)."""
    screener, ari, app = restarted_with_bridge_call(bridged=False)
    ari.channel_map["c1"]["state"] = "Up"
    ari.bridge_list = [{"id": "og-br-before", "channels": []}]
    await app.reconcile()
    assert await joined(ari, "c1", "og-out-d1") == "og-br-before"
    assert [c[0] for c in ari.calls if c[0] in ("answer", "create_bridge", "hangup")] == []
    await app.stop()


@pytest.mark.parametrize(("gone", "left"), [("c1", "og-out-d1"), ("og-out-d1", "c1")],
                         ids=["caller left", "callee left"])
async def test_after_a_restart_the_leg_left_alone_in_a_bridge_is_hung_up_and_its_bridge_destroyed(
        gone: str, left: str) -> None:
    """One leg of a bridged call hung up while no outguard was running: the other is hung
    up, the call closed, and its bridge is not left behind, empty and nobody's (nobody saw
    both legs leave it: destroyed, not pooled); another call's bridge is left alone."""
    screener, ari, app = restarted_with_bridge_call(answered=True)
    ari.gone.add(gone)
    ari.bridge_list = [{"id": "og-br-d1", "channels": [left]},
                       {"id": "og-br-other", "channels": ["c7", "og-out-d7"]}]
    await app.reconcile()
    assert ("hangup", left, 16) in ari.calls
    assert screener.ended_ids == [("d1", None)]
    assert ("destroy_bridge", "og-br-d1") in ari.calls and "og-br-d1" not in app.bridges
    assert ("destroy_bridge", "og-br-other") not in ari.calls
    await app.stop()


async def test_after_a_restart_a_carrier_leg_with_no_call_and_no_caller_is_hung_up(
) -> None:
    """kill -9 before the call's row was written: the new outguard does not know the call;
    its caller left meanwhile, so nobody would ever end the carrier leg."""
    screener = FakeScreener()
    ari = FakeRestartAri()
    app = StasisApp(ari, screener, CallSettings())  # type: ignore[arg-type]
    out = {"id": "og-out-x1", "state": "Up",
           "dialplan": {"app_name": "Stasis", "app_data": "outguard,outbound,c-gone"}}
    kept = {"id": "og-out-x2", "state": "Up",
            "dialplan": {"app_name": "Stasis", "app_data": "outguard,outbound,c-up"}}
    ari.channel_map = {"og-out-x1": out, "og-out-x2": kept, "c-up": {"id": "c-up"}}
    ari.app_channels = ["og-out-x1", "og-out-x2", "c-up"]
    ari.bridge_list = [{"id": "og-br-x1", "channels": ["og-out-x1"]},
                       {"id": "og-br-x2", "channels": ["og-out-x2", "c-up"]}]
    await app.reconcile()
    assert [c for c in ari.calls if c[0] in ("hangup", "destroy_bridge")] == [
        ("hangup", "og-out-x1", 16), ("destroy_bridge", "og-br-x1")]  # a call up is not cut
    await app.stop()


@pytest.mark.parametrize(
    ("setting", "channelvars", "expected"),
    [
        pytest.param("open", {"OUTGUARD_FAIL_MODE": "closed", "OUTGUARD_FAIL_CAUSE": "21"},
                     ("hangup", "c1", 21), id="the-channel-says-closed-21-over-settings-open"),
        pytest.param("closed", {"OUTGUARD_FAIL_MODE": "open"},
                     ("continue", "c1", "outguard-dial", "13800138000", 1),
                     id="the-channel-says-open-over-settings-closed"),
        pytest.param("open", {}, ("continue", "c1", "outguard-dial", "13800138000", 1),
                     id="no-channel-variable-the-settings-decide"),
        pytest.param("closed", {"OUTGUARD_FAIL_MODE": "", "OUTGUARD_FAIL_CAUSE": "x"},
                     ("hangup", "c1", 34), id="empty-or-bad-values-the-settings-decide"),
    ],
)
async def test_the_channels_failure_policy_wins_over_the_settings(
    setting: str, channelvars: dict[str, str], expected: tuple[Any, ...]
) -> None:
    """One rule for ARI, FastAGI and the dialplan (dialplan_vars.failure_policy)."""
    app, ari = make(FakeScreener(error=RuntimeError("boom")), fail_mode=setting)
    app.dispatch(start("c1", **channelvars))
    await drain(app)
    assert ari.calls[-1] == expected


async def test_every_log_line_about_a_failed_call_masks_the_dialled_number(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, _ = make(FakeScreener(error=RuntimeError("boom")), fail_mode="closed")
    with caplog.at_level("INFO"):
        app.dispatch(start("c1", "13800138000"))
        await drain(app)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "138****8000" in text
    assert "13800138000" not in text


# -- several PBXes: one app per PBX, each touching only its own calls ------------------------

def on_pbx(screener: FakeScreener, pbx: str) -> tuple[StasisApp, FakeAri]:
    ari = FakeAri()
    app = StasisApp(ari, screener, CallSettings(), FakeTracker(), pbx=pbx)  # type: ignore[arg-type]
    return app, ari


async def test_two_pbxes_with_the_same_channel_id_keep_their_calls_apart() -> None:
    screener = FakeScreener()
    on_a, _ = on_pbx(screener, "a")
    on_b, ari_b = on_pbx(screener, "b")
    on_a.dispatch(start("1795400932.7"))
    await drain(on_a)
    screener.prefix = "e-"  # the real screener gives a colliding id a decision id of its own
    on_b.dispatch(start("1795400932.7"))
    await drain(on_b)
    assert [f.pbx for f in screener.seen] == ["a", "b"]
    assert len(screener.live) == 2
    # PBX b's channel ends (event on b's WebSocket): only b's call ends
    on_b.dispatch({"type": "ChannelDestroyed", "channel": {"id": "1795400932.7"}, "cause": 16})
    assert screener.ended_ids == [("e-1795400932.7", 16)]
    # PBX b's ARI reconnects and lists no channel: a's call is not b's to close
    await on_b.reconcile()
    assert screener.ended_ids == [("e-1795400932.7", 16)]
    assert screener.live.on_channel("a", "1795400932.7") is not None
    assert ari_b.calls[-1][0] == "continue"  # nothing was sent to b for a's call


async def test_a_reconnecting_ari_closes_only_its_own_pbxs_calls_that_are_gone() -> None:
    screener = FakeScreener()
    on_a, _ = on_pbx(screener, "a")
    for pbx in ("a", "b"):
        screener.live.restore([LiveCall(
            call_id=f"d-{pbx}", channel_id="c1", adapter="ari", tenant="t", account="a",
            caller_id="01088886666", destination="13800138000", started=time.time(), pbx=pbx)])
    await on_a.reconcile()  # a's Asterisk restarted: its channels are gone
    assert screener.ended_ids == [("d-a", None)]
    assert screener.live.on_channel("b", "c1") is not None


class FakeEntityAri(FakeAri):
    """An Asterisk with an entity id and an events WebSocket that stays open."""

    base = "http://10.0.0.2:8088/ari"

    def __init__(self, entity: str) -> None:
        super().__init__()
        self.entity = entity
        self.opened = 0

    async def info(self) -> dict[str, Any]:
        return {"system": {"entity_id": self.entity, "version": "22.0.0"}}

    async def events(self, on_open: Any = None) -> Any:
        self.opened += 1
        if on_open is not None:
            on_open()
        await asyncio.Event().wait()
        yield {}  # pragma: no cover - never reached

    async def drop_events(self) -> None:
        pass


async def test_an_asterisk_under_a_pbx_name_another_asterisk_holds_is_never_used(
    tmp_path: Path,
) -> None:
    """The ARI target claims its PBX name for its Asterisk before the Stasis app
    registers: refused, it opens no events WebSocket and says why; the Asterisk that
    holds the name is used."""
    store = AsyncStore(SQLiteStore(tmp_path / "og.db"))
    try:
        other = PbxClaims(store, "og-a:8470")
        await other.claim("bj-1", "ari", "02:00:00:00:00:01", "http://10.0.0.1:8088/ari")
        ari = FakeEntityAri("02:00:00:00:00:02")
        claims = PbxClaims(store, "og-b:8470")
        app = StasisApp(ari, FakeScreener(), CallSettings(), None, pbx="bj-1",  # type: ignore[arg-type]
                        claims=claims)
        task = asyncio.ensure_future(app.run())
        try:
            await eventually(lambda: app.reconnects >= 1, "a refused attempt, retried")
            assert ari.opened == 0 and not app.connected
            assert "pbx 'bj-1'" in app.last_error and "02:00:00:00:00:01" in app.last_error
            assert ("bj-1", "ari") in claims.conflicts
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        same = FakeEntityAri("02:00:00:00:00:01")  # the name's own Asterisk
        app = StasisApp(same, FakeScreener(), CallSettings(), None, pbx="bj-1",  # type: ignore[arg-type]
                        claims=claims)
        task = asyncio.ensure_future(app.run())
        try:
            await eventually(lambda: app.connected, "the name's own Asterisk used")
            assert same.opened == 1 and claims.conflicts == {}
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await store.aclose()


class TakenAri(FakeEntityAri):
    """An Asterisk where another connection registers the application while outguard's
    WebSocket is open (``take``), and keeps it until ``leave``."""

    def __init__(self) -> None:
        super().__init__("02:00:00:00:00:09")
        self.taken = asyncio.Event()
        self.held_by_other = False
        self.listed = 0

    async def events(self, on_open: Any = None) -> Any:
        self.opened += 1
        if on_open is not None:
            on_open()
        await self.taken.wait()
        self.taken.clear()
        self.held_by_other = True
        yield {"type": "ApplicationReplaced", "application": self.app,
               "timestamp": "2026-12-02T22:00:00.000+0000"}
        await asyncio.Event().wait()  # the WebSocket stays open, silent
        yield {}  # pragma: no cover - never reached

    async def application(self) -> dict[str, Any]:
        self.listed += 1
        if not self.held_by_other:
            raise AriError("GET", "/applications/outguard", 404, "Application not found")
        return {"name": self.app, "channel_ids": []}


async def test_an_application_taken_by_another_connection_stands_aside_until_it_is_free(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ApplicationReplaced: logged as an error naming the application, PBX and Asterisk;
    the target stands aside (no reconnect that would take the calls back and forth) while
    Asterisk lists the application; registers again once it is free."""
    ari = TakenAri()
    app = StasisApp(ari, FakeScreener(), CallSettings(), None, pbx="bj-1")  # type: ignore[arg-type]
    app.replaced.poll_s = 0.01
    task = asyncio.ensure_future(app.run())
    try:
        await eventually(lambda: app.connected, "connected")
        ari.taken.set()
        await eventually(lambda: ari.listed >= 3, "the application checked, still held")
        assert ari.opened == 1 and not app.connected  # never took it back
        assert app.replaced.times == 1 and app.last_error == app.replaced.problem
        for part in ("pbx bj-1", "'outguard'", ari.base, "ApplicationReplaced"):
            assert part in app.replaced.problem
        assert any(r.levelname == "ERROR" and "stands aside" in r.getMessage()
                   for r in caplog.records)
        ari.held_by_other = False  # the other process has gone
        await eventually(lambda: ari.opened == 2 and app.connected, "registered again")
        assert app.replaced.problem == ""
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
