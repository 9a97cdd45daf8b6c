"""Correlating AMI events with decisions: what answers a call, what ends it, and when."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from panoramisk.message import Message

from agi.outcomes import ENDED_EVENT, EVENT_FILTERS, OutcomeTracker
from outguard.live import UNKNOWN_AFTER_RESTART, UNKNOWN_WHILE_AWAY, InMemoryLiveCalls, LiveCall

UID = "pbx-1795400932.7"  # the screened (agent) channel


class Recorder:
    """The Screener's side: a live-call registry, and what was reported."""

    def __init__(self) -> None:
        self.live = InMemoryLiveCalls()
        self.now = 5000.0
        self.answers: list[tuple[str, float | None]] = []
        self.ended_at: list[float | None] = []
        self.ends: list[tuple[str, int | None]] = []
        self.notes: list[str | None] = []

    def clock(self) -> float:
        return self.now

    def reserve(self, uniqueid: str, decision_id: str, restored: bool = False) -> None:
        call = LiveCall(call_id=decision_id, channel_id=uniqueid, adapter="agi", tenant="t1",
                        account="a1", caller_id="+8610", destination="+86138",
                        started=self.now)
        if restored:
            self.live.restore([call])
        else:
            self.live.reserve(call)

    def answered(self, decision_id: str, at: float | None = None) -> None:
        self.answers.append((decision_id, at))

    def ended(self, decision_id: str, cause: int | None, at: float | None = None,
              note: str | None = None, answered_at: float | None = None) -> bool:
        if self.live.release(decision_id) is None:
            return False
        self.ends.append((decision_id, cause))
        self.notes.append(note)
        self.ended_at.append(at)
        return True


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def ended(uid: str = UID, cause: str = "16", answered: str = "", billsec: str = "0.000000",
          name: str = ENDED_EVENT) -> Message:
    """The hangup handler's event, as AMI delivers it (the channel's headers first)."""
    return Message({"Event": "UserEvent", "Uniqueid": uid, "Linkedid": uid,
                    "Channel": "PJSIP/agent-00000001", "UserEvent": name, "Cause": cause,
                    "Answered": answered, "Billsec": billsec})


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tracker(rec: Recorder, clock: Clock) -> OutcomeTracker:
    t = OutcomeTracker(rec, clock)
    rec.reserve(UID, "d1")
    t.track(UID)
    return t


def test_one_event_reports_the_answer_the_end_and_the_real_cause(
    tracker: OutcomeTracker, rec: Recorder
) -> None:
    tracker.on_event(ended(cause="16", answered="1796195686.616814", billsec="0.304900"))
    assert rec.answers == [("d1", 1796195686.616814)]
    assert rec.ends == [("d1", 16)]
    assert rec.ended_at == [pytest.approx(1796195686.921714)]
    assert len(rec.live) == 0


def test_an_unanswered_call_ends_with_its_cause_and_no_answer(
    tracker: OutcomeTracker, rec: Recorder
) -> None:
    tracker.on_event(ended(cause="17", answered="0.000000"))
    assert rec.answers == []
    assert rec.ends == [("d1", 17)]


def test_other_channels_and_other_events_are_ignored(
    tracker: OutcomeTracker, rec: Recorder
) -> None:
    tracker.on_event(ended("x.1"))
    tracker.on_event(ended(name="SomethingElse"))
    tracker.on_event(Message({"Event": "Hangup", "Uniqueid": UID, "Cause": "16"}))
    assert (rec.answers, rec.ends) == ([], [])


def test_a_repeated_uniqueid_header_is_read_as_one(
    tracker: OutcomeTracker, rec: Recorder
) -> None:
    event = ended()
    event["Uniqueid"] = [UID, UID]
    tracker.on_event(event)
    assert rec.ends == [("d1", 16)]


def test_an_end_before_the_hand_off_ends_the_call_when_it_is_tracked(
    rec: Recorder, clock: Clock
) -> None:
    tracker = OutcomeTracker(rec, clock)
    tracker.on_event(ended(cause="17"))
    rec.reserve(UID, "d1")
    tracker.track(UID)
    assert rec.ends == [("d1", 17)]
    assert len(rec.live) == 0


def test_a_call_of_the_registry_is_followed_without_a_hand_off(
    rec: Recorder, clock: Clock
) -> None:
    """Calls restored after a restart are in the registry, never handed over."""
    tracker = OutcomeTracker(rec, clock)
    rec.reserve("pbx-9.1", "d9", restored=True)
    tracker.on_event(ended("pbx-9.1", cause="16", answered="1500.5", billsec="2.5"))
    assert rec.ends == [("d9", 16)]
    assert rec.ended_at == [pytest.approx(1503.0)]


def test_cause_zero_or_missing_is_no_cause(tracker: OutcomeTracker, rec: Recorder) -> None:
    tracker.on_event(ended(cause=""))
    assert rec.ends == [("d1", None)]


def test_the_filters_name_the_one_event_the_tracker_reads() -> None:
    assert any(ENDED_EVENT in f for f in EVENT_FILTERS)
    assert not any("Hangup" in f or "Newstate" in f for f in EVENT_FILTERS)


def test_reconcile_ends_only_calls_known_before_the_listing_and_now_gone(
    tracker: OutcomeTracker, rec: Recorder
) -> None:
    rec.reserve("pbx-2.0", "d2")
    asked_at = rec.now + 0.5
    rec.now += 1
    rec.reserve("pbx-3.0", "d3")  # reserved after the listing was asked for
    assert tracker.reconcile({"pbx-2.0"}, asked_at) == 1
    assert rec.ends == [("d1", None)]
    assert rec.notes == [UNKNOWN_WHILE_AWAY]
    assert {c.channel_id for c in rec.live.calls()} == {"pbx-2.0", "pbx-3.0"}


def test_reconcile_after_a_restart_closes_restored_calls_whose_channel_is_gone(
    rec: Recorder, clock: Clock
) -> None:
    tracker = OutcomeTracker(rec, clock)
    rec.reserve("gone.1", "d-gone", restored=True)
    rec.reserve("up.1", "d-up", restored=True)
    assert tracker.reconcile({"up.1"}, rec.now + 1) == 1
    assert (rec.ends, rec.notes) == ([("d-gone", None)], [UNKNOWN_AFTER_RESTART])
    tracker.on_event(ended("up.1", cause="16", answered="1000.0", billsec="3.0"))
    assert rec.ends[-1] == ("d-up", 16)  # still followed, real cause
    assert rec.answers == [("d-up", 1000.0)]


def test_dials_talk_time_wins_over_a_later_cdr_record(
    tracker: OutcomeTracker, rec: Recorder
) -> None:
    """The CDR record read in the hangup handler was opened after the bridge ended: its
    answer is its own start (0.192 s before the end); Dial's talk time is the call's."""
    event = ended(cause="16", answered="1796220830.000000", billsec="0.192000")
    event["Talked"], event["At"] = "5480", "1796220830.192"
    tracker.on_event(event)
    assert rec.answers == [("d1", pytest.approx(1796220824.712))]
    assert rec.ends == [("d1", 16)]
    assert rec.ended_at == [pytest.approx(1796220830.192)]


def test_a_cdr_answer_that_agrees_with_dials_talk_time_is_kept(
    tracker: OutcomeTracker, rec: Recorder
) -> None:
    event = ended(cause="16", answered="1796220824.700000", billsec="5.492000")
    event["Talked"], event["At"] = "5480", "1796220830.192"
    tracker.on_event(event)
    assert rec.answers == [("d1", 1796220824.7)]
    assert rec.ended_at == [pytest.approx(1796220830.18)]  # the answer + Dial's talk time


def test_without_dial_the_cdr_figures_stand(tracker: OutcomeTracker, rec: Recorder) -> None:
    event = ended(cause="16", answered="1796220824.700000", billsec="5.492000")
    event["Talked"], event["At"] = "", "1796220830.192"  # the call was not connected by Dial
    tracker.on_event(event)
    assert rec.answers == [("d1", 1796220824.7)]
    assert rec.ended_at == [pytest.approx(1796220830.192)]


def test_an_unanswered_dial_reports_no_answer(tracker: OutcomeTracker, rec: Recorder) -> None:
    event = ended(cause="17", answered="", billsec="0.000000")
    event["Talked"], event["At"] = "", "1796220830.192"  # ANSWEREDTIME is set only if answered
    tracker.on_event(event)
    assert rec.answers == []
    assert rec.ends == [("d1", 17)]


def test_the_handlers_decision_id_names_the_call_it_closes(
    rec: Recorder, clock: Clock,
) -> None:
    """``DecisionId`` (the id the channel holds: <uniqueid>@<pbx> in cluster mode) finds
    the call; one of another channel or unknown is ignored and the channel decides."""
    tracker = OutcomeTracker(rec, clock)
    rec.reserve(UID, f"{UID}@default")
    rec.reserve("other-uid", "d-other")
    event = Message({**ended(cause="16"), "DecisionId": "d-other"})  # not this channel's
    tracker.on_event(event)
    assert rec.ends == [(f"{UID}@default", 16)]
    rec.reserve(UID, f"{UID}@default-2")
    tracker.on_event(Message({**ended(cause="17"), "DecisionId": f"{UID}@default-2"}))
    assert rec.ends[-1] == (f"{UID}@default-2", 17)


class FakeGlobals:
    """An AMI that answers Getvar / Setvar of globals."""

    def __init__(self, **globals: str) -> None:
        self.globals = dict(globals)

    async def action(self, name: str, **headers: Any) -> Message:
        if name == "Getvar":
            return Message({"Response": "Success",
                            "Value": self.globals.get(headers["Variable"], "")})
        self.globals[headers["Variable"]] = headers["Value"]
        return Message({"Response": "Success"})


async def settled(dialplan: Any, ami: FakeGlobals, elsewhere: str | None = None) -> None:
    from agi.outcomes import _getvar, _setvar

    async def live_elsewhere(name: str) -> str:
        return elsewhere or ""

    await dialplan.settle(lambda n: _getvar(ami, n), lambda n, v: _setvar(ami, n, v),  # type: ignore[arg-type]
                          live_elsewhere if elsewhere is not None else None)


async def test_ami_sets_the_dialplans_pbx_global_when_empty_and_flags_another(
) -> None:
    from outguard.dialplan_pbx import DialplanPbx

    for value, found in ((None, "bj-1"), ("bj-1", "bj-1"), ("sh-1", "sh-1")):
        ami = FakeGlobals() if value is None else FakeGlobals(OUTGUARD_PBX=value)
        dialplan = DialplanPbx("bj-1", "bj-1")
        await settled(dialplan, ami)
        assert (dialplan.found, ami.globals["OUTGUARD_PBX"]) == (found, value or "bj-1")
        assert (dialplan.call_id("1.5") is None) is (found != "bj-1")
        assert bool(dialplan.problem) is (found != "bj-1")


@pytest.mark.parametrize(("expected", "marker", "elsewhere", "after"), [
    ("bj-1", "sh-1", None, "bj-1"),  # outguard set it for the old name: replaced
    ("", "sh-1", None, ""),  # the PBX moved to an embedded outguard: emptied
    ("bj-1", "", None, "sh-1"),  # an administrator set it: flagged, kept
    ("bj-1", "xx", None, "sh-1"),  # changed by hand after outguard set it: kept
    ("bj-1", "sh-1", "instance og-b's ami target claims PBX name 'sh-1'", "sh-1"),
], ids=["stale-own", "stale-own-embedded", "by-hand", "changed-by-hand", "in-use-elsewhere"])
async def test_a_value_outguard_set_for_a_name_no_longer_in_use_is_replaced(
    expected: str, marker: str, elsewhere: str | None, after: str,
) -> None:
    """OUTGUARD_PBX_SET records the value outguard set: a global that still equals it is
    outguard's own and follows the configuration (renamed PBX, moved to another outguard),
    unless another instance claims that name for this Asterisk; any other value is an
    administrator's: flagged, never overwritten."""
    from outguard.dialplan_pbx import DialplanPbx

    ami = FakeGlobals(OUTGUARD_PBX="sh-1", OUTGUARD_PBX_SET=marker)
    dialplan = DialplanPbx("bj-1", expected)
    await settled(dialplan, ami, elsewhere)
    assert ami.globals["OUTGUARD_PBX"] == after
    replaced = after == expected
    assert ami.globals["OUTGUARD_PBX_SET"] == (expected if replaced else marker)
    assert bool(dialplan.problem) is not replaced
    assert (dialplan.call_id("1.5") is not None) is replaced



class SlowGlobals(FakeGlobals):
    """A view of shared globals over a connection whose n-th request lets other tasks run
    ``yields[n]`` times first (as a real ARI or AMI round trip does, fast or slow)."""

    def __init__(self, shared: dict[str, str], yields: list[int]) -> None:
        super().__init__()
        self.globals, self.yields = shared, list(yields)

    async def action(self, name: str, **headers: Any) -> Message:
        for _ in range(self.yields.pop(0) if self.yields else 1):
            await asyncio.sleep(0)
        return await super().action(name, **headers)


@pytest.mark.parametrize("expected", ["", "bj-1"], ids=["embedded", "cluster"])
async def test_the_ari_app_and_the_ami_listener_settling_at_once_agree_on_what_they_set(
    expected: str,
) -> None:
    """A PBX's ARI app and AMI listener both settle its OUTGUARD_PBX at connect, on one
    record: one that read the global before the other replaced it, and the marker after,
    must not take the replaced value for an administrator's and flag a global that is
    right (an embedded outguard left with every allowed call costing one more request:
    test_cluster_faults' rename test, once in a suite run)."""
    from outguard.dialplan_pbx import DialplanPbx

    shared = {"OUTGUARD_PBX": "sh-1", "OUTGUARD_PBX_SET": "sh-1"}
    fast = SlowGlobals(shared, [1, 1, 1, 1])
    slow = SlowGlobals(shared, [0, 10])  # reads the global first, the marker last
    dialplan = DialplanPbx("bj-1", expected)
    await asyncio.gather(settled(dialplan, fast), settled(dialplan, slow))
    assert (shared["OUTGUARD_PBX"], shared["OUTGUARD_PBX_SET"]) == (expected,) * 2
    assert (dialplan.found, dialplan.problem) == (expected, "")
    assert dialplan.call_id("1.5") is not None
