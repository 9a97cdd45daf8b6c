"""The typed call events: one per thing that happened to a call, published once.

The Screener publishes each event once (``Screener.publish``); the call log and the rate
counters consume it in process, synchronously, before the hub hands it to the
subscribers that read at their own pace: the risk figures (``outguard.enforcement``), the
metrics collector and the live stream (``/api/events``, through :func:`as_dict`, the one
serialiser of call events; ``outguard.events.wire`` serialises every hub event). Nobody
re-parses an untyped dict by key: snapshot swaps and enforcement events are typed too
(``outguard.events``).

* :class:`CallDecided` - a verdict was given (allowed, blocked, or allowed with shadow hits),
  or screening failed and the failure policy answered the call (``failed``: the rule is
  the policy applied, :data:`FAIL_OPEN` or :data:`FAIL_CLOSED`; ``allowed`` says whether
  the call went out, so a fail-open call counts and is followed like an allowed one)
* :class:`CallAnswered` - an allowed call was answered (the first report)
* :class:`CallEnded` - an allowed call ended; it carries the parties, so no consumer needs
  to remember the decision (the live-call registry held them while the call was up)
"""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass
from typing import Any, ClassVar

from outguard.live import DEFAULT_PBX

__all__ = ["CallDecided", "CallAnswered", "CallEnded", "CallEvent", "as_dict", "encode",
           "decode", "FAILED", "FAIL_OPEN", "FAIL_CLOSED", "NOT_CARRIED_OUT", "verdict_of", "went_out"]

#: the call log's verdict of a call outguard could not screen
FAILED = "failed"
#: the rule of a failed call: the failure policy that answered it (let through / refused);
#: "" when none could be applied (the channel was gone before outguard could answer)
FAIL_OPEN = "fail-open"
FAIL_CLOSED = "fail-closed"
#: the reason of a failed call whose decision never reached the channel: the dialplan's
#: failure branch answered it instead (outguard died before answering, or its answer was
#: lost), as the hangup handler's event told (``Screener.not_carried_out``)
NOT_CARRIED_OUT = "decision_not_carried_out"


@dataclass(frozen=True, slots=True)
class CallDecided:
    type: ClassVar[str] = "decision"

    call_id: str  # the decision id, the call log's key
    channel_id: str
    adapter: str  # "ari" | "agi"
    at: float  # epoch seconds
    tenant: str
    account: str
    caller_id: str  # E.164 when it parsed
    destination: str  # E.164 when it parsed
    allowed: bool
    rule: str
    reason: str
    message: str
    cause: int  # the hangup cause of a block (0 when allowed)
    shadow: tuple[str, ...]
    decision_us: int
    purpose: str = ""  # the attempt's purpose (marketing, service, ...)
    campaign: str = ""  # the attempt's campaign, "" when none
    pbx: str = DEFAULT_PBX  # the PBX the call came from
    #: screening failed: ``reason`` says why, ``rule`` is the failure policy applied and
    #: ``allowed`` whether the call went out (fail-open)
    failed: bool = False
    #: a row of the same ``call_id``, if the call log has one, is an earlier decision that
    #: was never carried out (outguard died between the decision and the continue /
    #: hangup, and the channel was screened again): this one replaces it whole
    #: (``Screener._new_id``)
    redo: bool = False

    @property
    def verdict(self) -> str:
        return verdict_of(self.allowed, self.failed)


def verdict_of(allowed: bool, failed: bool) -> str:
    """The call log's verdict: allow | block | failed."""
    return FAILED if failed else "allow" if allowed else "block"


def went_out(verdict: str, rule: str) -> bool:
    """Whether a logged call was dialled: allowed, or failed and let through by fail-open.
    Such calls count toward the caps and the attempts, and their outcome (answer,
    duration, cause) is followed; ``outguard.store.base.WENT_OUT_SQL`` says it in SQL."""
    return verdict == "allow" or (verdict == FAILED and rule == FAIL_OPEN)


@dataclass(frozen=True, slots=True)
class CallAnswered:
    type: ClassVar[str] = "answered"

    call_id: str
    at: float
    tenant: str
    account: str
    pbx: str = DEFAULT_PBX


@dataclass(frozen=True, slots=True)
class CallEnded:
    type: ClassVar[str] = "outcome"

    call_id: str
    at: float  # when it ended
    tenant: str
    account: str
    caller_id: str
    destination: str
    answered_at: float | None
    #: seconds connected; None when the end was learnt without a hangup after the answer
    duration: float | None
    cause: int | None  # Q.850, None when unknown
    #: how the end was known when no hangup was seen ("unknown after restart", ...)
    note: str | None = None
    pbx: str = DEFAULT_PBX

    @property
    def answered(self) -> bool:
        return self.answered_at is not None


CallEvent = CallDecided | CallAnswered | CallEnded


def as_dict(event: CallEvent) -> dict[str, Any]:
    """The wire form of a call event (the live stream); field names as the API documents."""
    if isinstance(event, CallDecided):
        return {
            "type": event.type, "decision_id": event.call_id, "adapter": event.adapter,
            "pbx": event.pbx, "at": event.at, "tenant": event.tenant, "account": event.account,
            "caller_id": event.caller_id, "destination": event.destination,
            "verdict": event.verdict, "rule": event.rule,
            "reason": event.reason, "message": event.message, "shadow": list(event.shadow),
            "decision_us": event.decision_us, "redo": event.redo,
        }
    if isinstance(event, CallAnswered):
        return {"type": event.type, "decision_id": event.call_id, "pbx": event.pbx,
                "at": event.at, "tenant": event.tenant, "account": event.account}
    return {
        "type": event.type, "decision_id": event.call_id, "pbx": event.pbx,
        "account": event.account,
        "tenant": event.tenant, "caller_id": event.caller_id,
        "destination": event.destination, "answered": event.answered,
        "duration": event.duration, "cause": event.cause, "note": event.note, "at": event.at,
    }


_KINDS: dict[str, type[CallDecided] | type[CallAnswered] | type[CallEnded]] = {
    k.type: k for k in (CallDecided, CallAnswered, CallEnded)}


def encode(event: CallEvent) -> str:
    """The lossless form of a call event between outguard instances (cluster mode's call
    feed, ``outguard.cluster.feed``): the type, then every field in order."""
    return json.dumps([event.type, *astuple(event)], separators=(",", ":"))


def decode(text: str | bytes) -> CallEvent:
    """The event ``encode`` wrote; ValueError for anything else."""
    try:
        kind, *values = json.loads(text)
        cls = _KINDS[kind]
        if cls is CallDecided:
            values[13] = tuple(values[13])  # shadow
        return cls(*values)
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise ValueError(f"not a call event: {text!r:.200}") from exc
