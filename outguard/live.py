"""The live-call registry: every call outguard let through and has not seen end.

One home for what a call in progress holds: its concurrency slots (per tenant and per
account, read by the concurrency caps), its answer time, and the maximum call age
(:data:`MAX_CALL_AGE_S`, the one constant: a call older than that was never seen ending,
and its slots are released). The adapters (ARI continue and bridge mode, FastAGI with
the AMI listener) find a call by its channel's unique id; the Screener reserves, answers
and releases; the call log, counters, risk figures, metrics and the live stream hear of
it through the typed call events the Screener publishes.

One outguard may serve several PBXes, and two PBXes can have channels of the same name
and even the same unique id (Asterisk's ``EPOCH.SEQUENCE`` ids collide between boxes
started in the same second, unless ``systemname`` prefixes them). A channel is therefore
found by its PBX AND its id (``on_channel(pbx, channel_id)``), and each adapter reconciles
only the calls of its own PBX (``calls(pbx)``).

After a restart the Screener restores the call log's open rows (allowed calls with no
outcome, younger than the maximum call age) into the registry before the adapters
connect, so the caps still count them; the adapters then reconcile against what Asterisk
reports and release the calls whose channel is gone.

The interface (:class:`LiveCalls`); :class:`InMemoryLiveCalls` is the one implementation,
in embedded and cluster mode alike:

* ``reserve(call)`` takes the call's slots in this process. Idempotent per
  ``call.call_id``: a second reserve of the same id changes nothing and returns False.
  No TTL here: a call nobody saw ending is released after :data:`MAX_CALL_AGE_S` by the
  Screener's housekeeping (``expired``).
* ``concurrent(scope, key)`` is read on the hot path for every decision ("account" or
  "tenant"): no I/O.
* ``answered(call_id, at)`` records the first answer (later ones are ignored) and returns
  the call; ``release(call_id)`` gives the slots back exactly once and returns the call
  (None the second time, or for a call never reserved): whichever path sees the end first
  wins, the others are no-ops.
* ``get(call_id)`` / ``on_channel(pbx, channel_id)`` find a call; ``calls(pbx)`` lists
  them (all of them, or one PBX's, for reconcile); ``expired(now)`` lists those older than
  the maximum call age.
* ``restore(calls)`` loads calls in progress at start (the call log's open rows); the
  slots count at once.

In cluster mode (several instances, one Redis) the registry stays local: the cluster's
concurrency is checked and its slots taken by the one Redis round trip of the call's
reservation (``outguard.cluster.caps``, ``reserve.lua``, idempotent per call id), not
through this interface. Those Redis slots have their own TTL, ``[cluster] slot_ttl_s``
(default 7200 s, not :data:`MAX_CALL_AGE_S`): the Screener extends the slots of the calls
in this registry every third of it (every 10 s when that is sooner) while they are up,
takes them again for the calls restored at start, releases them once when the call ends,
and the slots of an instance that died expire after that TTL. So no count goes negative,
and a call longer than ``slot_ttl_s`` keeps its slot as long as its instance lives.

Thread safety: none; call from the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Protocol

__all__ = ["DEFAULT_PBX", "MAX_CALL_AGE_S", "LiveCall", "LiveCalls", "InMemoryLiveCalls", "CallCounts",
           "UNKNOWN_AFTER_RESTART", "UNKNOWN_WHILE_AWAY", "NEVER_SEEN_ENDING"]

#: the PBX of a single, unnamed target ([ari] / [ami] without ``pbx``), and of channels
#: whose adapter names none
DEFAULT_PBX = "default"

#: A call still "live" after this long was never seen ending (an AMI or ARI event lost):
#: its slots are released and its call-log row closed without a cause.
MAX_CALL_AGE_S = 6 * 3600.0

#: call-log notes (``calls.end_note``) of calls whose end was known without a hangup:
#: the channel was gone when outguard came back after a restart (cause unknown) ...
UNKNOWN_AFTER_RESTART = "unknown after restart"
#: ... or when the ARI / AMI connection came back after a drop ...
UNKNOWN_WHILE_AWAY = "ended while disconnected"
#: ... or the call was older than the maximum call age
NEVER_SEEN_ENDING = "never seen ending"

_SCOPES = ("account", "tenant")


@dataclass(frozen=True, slots=True)
class LiveCall:
    """One call in progress, as the registry holds it (times are epoch seconds)."""

    call_id: str  # the decision id, the call log's key
    channel_id: str  # ARI channel id / AGI agi_uniqueid (the same thing in Asterisk)
    adapter: str  # "ari" | "agi"
    tenant: str
    account: str
    caller_id: str
    destination: str
    started: float
    answered_at: float | None = None
    #: loaded from the call log after a restart (its channel not seen since)
    restored: bool = False
    #: the PBX the channel is on (the adapter's target name, ``outguard.config``)
    pbx: str = DEFAULT_PBX


class LiveCalls(Protocol):
    """What the Screener and the adapters ask of the registry (see the module docstring)."""

    def reserve(self, call: LiveCall) -> bool: ...

    def concurrent(self, scope: str, key: str) -> int: ...

    def answered(self, call_id: str, at: float) -> LiveCall | None: ...

    def release(self, call_id: str) -> LiveCall | None: ...

    def get(self, call_id: str) -> LiveCall | None: ...

    def on_channel(self, pbx: str, channel_id: str) -> LiveCall | None: ...

    def calls(self, pbx: str | None = None, *,
              started_before: float | None = None) -> list[LiveCall]: ...

    def expired(self, now: float) -> list[LiveCall]: ...

    def restore(self, calls: Iterable[LiveCall]) -> int: ...

    def __len__(self) -> int: ...


class InMemoryLiveCalls:
    """The registry of one outguard process (embedded mode)."""

    def __init__(self, max_age_s: float = MAX_CALL_AGE_S) -> None:
        self.max_age_s = max_age_s
        self._calls: dict[str, LiveCall] = {}
        self._by_channel: dict[tuple[str, str], str] = {}  # (pbx, channel) -> call id
        self._slots: dict[tuple[str, str], int] = {}

    def reserve(self, call: LiveCall) -> bool:
        if call.call_id in self._calls:
            return False
        self._calls[call.call_id] = call
        if call.channel_id:  # a channel screened again is found by its latest call
            self._by_channel[(call.pbx, call.channel_id)] = call.call_id
        for key in (("tenant", call.tenant), ("account", call.account)):
            self._slots[key] = self._slots.get(key, 0) + 1
        return True

    def concurrent(self, scope: str, key: str) -> int:
        found = self._slots.get((scope, key))
        if found is None:
            if scope not in _SCOPES:
                raise ValueError(f"unknown concurrency scope {scope!r} (account, tenant)")
            return 0
        return found

    def answered(self, call_id: str, at: float) -> LiveCall | None:
        call = self._calls.get(call_id)
        if call is None:
            return None
        if call.answered_at is None:
            call = self._calls[call_id] = replace(call, answered_at=at)
        return call

    def release(self, call_id: str) -> LiveCall | None:
        call = self._calls.pop(call_id, None)
        if call is None:
            return None
        where = (call.pbx, call.channel_id)
        if call.channel_id and self._by_channel.get(where) == call_id:
            del self._by_channel[where]
        for key in (("tenant", call.tenant), ("account", call.account)):
            left = self._slots.get(key, 0) - 1
            if left > 0:
                self._slots[key] = left
            else:
                self._slots.pop(key, None)
        return call

    def get(self, call_id: str) -> LiveCall | None:
        return self._calls.get(call_id)

    def on_channel(self, pbx: str, channel_id: str) -> LiveCall | None:
        call_id = self._by_channel.get((pbx, channel_id))
        return self._calls.get(call_id) if call_id is not None else None

    def calls(self, pbx: str | None = None, *,
              started_before: float | None = None) -> list[LiveCall]:
        """The calls up (of ``pbx``); ``started_before``: only those decided before then
        (a reconcile judges only the calls its listing of channels can know of: one
        decided after it asked for the listing is not in it, and did not end)."""
        return [c for c in self._calls.values()
                if (pbx is None or c.pbx == pbx)
                and (started_before is None or c.started < started_before)]

    def expired(self, now: float) -> list[LiveCall]:
        horizon = now - self.max_age_s
        return [c for c in self._calls.values() if c.started < horizon]

    def restore(self, calls: Iterable[LiveCall]) -> int:
        return sum(1 for call in calls if self.reserve(replace(call, restored=True)))

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self) -> Iterator[LiveCall]:
        return iter(list(self._calls.values()))


class RateCounts(Protocol):
    """The rate side of ``rules.model.Counters`` (``rules.counters.InMemoryCounters``)."""

    def attempts(self, scope: str, key: str, window_s: int, now: float) -> int: ...

    def destination_attempts(self, tenant: str, e164: str, window_s: int,
                             now: float) -> int: ...

    def distinct_callees(self, account: str, now: float) -> int: ...


class CallCounts:
    """``rules.model.Counters`` for the engine: rates from the counters, calls in progress
    from the live-call registry. The methods are the two objects' own bound methods, so
    a lookup costs nothing more than calling them directly."""

    __slots__ = ("attempts", "destination_attempts", "distinct_callees", "concurrent")

    def __init__(self, rates: RateCounts, live: LiveCalls) -> None:
        self.attempts = rates.attempts
        self.destination_attempts = rates.destination_attempts
        self.distinct_callees = rates.distinct_callees
        self.concurrent = live.concurrent
