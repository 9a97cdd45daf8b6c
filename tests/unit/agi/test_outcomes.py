"""Correlating AMI events with decisions: what answers a call, what ends it, and when."""

from __future__ import annotations

from typing import Any

import pytest
from panoramisk.message import Message

from agi.outcomes import CDR_GRACE_S, OutcomeTracker
from outguard.live import UNKNOWN_AFTER_RESTART, UNKNOWN_WHILE_AWAY, InMemoryLiveCalls, LiveCall

UID = "pbx-1795400932.7"  # the screened (agent) channel
LEG = "pbx-1795400932.8"  # the carrier leg Dial created


class Recorder:
    """The Screener's side: a live-call registry, and what was reported."""

    def __init__(self) -> None:
        self.live = InMemoryLiveCalls()
        self.now = 5000.0
        self.answers: list[str] = []
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
        self.answers.append(decision_id)

    def ended(self, decision_id: str, cause: int | None, at: float | None = None,
              note: str | None = None) -> bool:
        if self.live.release(decision_id) is None:
            return False
        self.ends.append((decision_id, cause))
        self.notes.append(note)
        return True


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def ev(kind: str, uid: str = UID, **headers: Any) -> Message:
    return Message({"Event": kind, "Uniqueid": uid, "Linkedid": UID, **headers})


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


def test_answer_then_hangup_reports_both_with_the_real_cause(
    tracker: OutcomeTracker, rec: Recorder
) -> None:
    tracker.on_event(ev("Newstate", ChannelState="5"))  # ringing: nothing
    tracker.on_event(ev("Newstate", ChannelState="6"))
    tracker.on_event(ev("SoftHangupRequest", Cause="32"))  # an internal flag: ignored
    tracker.on_event(ev("Hangup", Cause="16"))
    assert rec.answers == ["d1"]
    assert rec.ends == [("d1", 16)]
    assert len(rec.live) == 0


def test_dialend_answer_counts_as_answered(tracker: OutcomeTracker, rec: Recorder) -> None:
    tracker.on_event(ev("DialEnd", DestUniqueid=LEG, DialStatus="BUSY"))
    assert rec.answers == []
    tracker.on_event(ev("DialEnd", DestUniqueid=LEG, DialStatus="ANSWER"))
    assert rec.answers == ["d1"]


def test_the_carrier_leg_answering_counts_and_its_hangup_does_not_end_the_call(
    tracker: OutcomeTracker, rec: Recorder
) -> None:
    tracker.on_event(ev("Newstate", LEG, ChannelState="6"))
    tracker.on_event(ev("Hangup", LEG, Cause="16"))
    assert rec.answers == ["d1"]
    assert rec.ends == []
    tracker.on_event(ev("Hangup", Cause="16"))
    assert rec.ends == [("d1", 16)]


def test_other_channels_are_ignored(tracker: OutcomeTracker, rec: Recorder) -> None:
    other = Message({"Event": "Hangup", "Uniqueid": "x.1", "Linkedid": "x.1", "Cause": "16"})
    tracker.on_event(other)
    tracker.on_event(Message({"Event": "Newstate", "Uniqueid": "x.1", "Linkedid": "x.1",
                              "ChannelState": "6"}))
    assert (rec.answers, rec.ends) == ([], [])


def test_a_hangup_before_the_hand_off_ends_the_call_when_it_is_tracked(
    rec: Recorder, clock: Clock
) -> None:
    tracker = OutcomeTracker(rec, clock)
    tracker.on_event(ev("Hangup", Cause="17"))
    rec.reserve(UID, "d1")
    tracker.track(UID)
    assert rec.ends == [("d1", 17)]
    assert len(rec.live) == 0


def test_a_call_of_the_registry_is_followed_without_a_hand_off(
    rec: Recorder, clock: Clock
) -> None:
    tracker = OutcomeTracker(rec, clock)
    rec.reserve(UID, "d9")  # e.g. an ARI call, or one restored after a restart
    tracker.on_event(ev("VarSet", Variable="OUTGUARD_DECISION_ID", Value="d9"))
    tracker.on_event(ev("Hangup", Cause="21"))
    assert rec.ends == [("d9", 21)]


def test_tracking_twice_is_harmless(tracker: OutcomeTracker, rec: Recorder) -> None:
    tracker.track(UID)
    tracker.on_event(ev("VarSet", Variable="OUTGUARD_DECISION_ID", Value="d1"))
    assert rec.ends == []
    tracker.on_event(ev("Hangup", Cause="16"))
    assert rec.ends == [("d1", 16)]


def test_cause_zero_or_missing_is_no_cause(tracker: OutcomeTracker, rec: Recorder) -> None:
    tracker.on_event(ev("Hangup", Cause="0"))
    assert rec.ends == [("d1", None)]


def test_a_cdr_before_the_hangup_waits_for_the_hangup(
    tracker: OutcomeTracker, rec: Recorder, clock: Clock
) -> None:
    tracker.on_event(Message({"Event": "Cdr", "UniqueID": UID, "Disposition": "ANSWERED"}))
    assert rec.ends == []
    clock.now += 1
    tracker.on_event(ev("Hangup", Cause="16"))
    assert rec.ends == [("d1", 16)]


def test_a_cdr_without_a_hangup_ends_the_call_after_the_grace(
    tracker: OutcomeTracker, rec: Recorder, clock: Clock
) -> None:
    tracker.on_event(Message({"Event": "Cdr", "UniqueID": UID}))
    clock.now += CDR_GRACE_S + 1
    tracker.on_event(ev("Newstate", "x.1", ChannelState="6"))  # any later event
    assert rec.ends == [("d1", None)]


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
    tracker.on_event(ev("Newstate", "up.1", ChannelState="6"))
    tracker.on_event(ev("Hangup", "up.1", Cause="16"))  # still followed, real cause
    assert rec.ends[-1] == ("d-up", 16)
    assert rec.answers == ["d-up"]
