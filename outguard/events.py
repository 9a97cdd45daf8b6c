"""In-process publish/subscribe of typed events: the call events
(``outguard.callevents``), snapshot swaps and enforcement events (here), for the call log,
counters, risk figures, metrics, webhooks and the live stream. Nobody re-parses an untyped
dict by key: consumers match on the type, and :func:`wire` is the one serialiser of every
event for the live stream.

Publishing never blocks and never fails: a subscriber that falls behind loses its oldest
events (it is told how many it missed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from outguard.callevents import CallEvent, as_dict

__all__ = ["EnforcementAnnounced", "Event", "EventHub", "SnapshotSwapped", "Subscription",
           "wire"]


@dataclass(frozen=True, slots=True)
class SnapshotSwapped:
    """A new screening snapshot took over (``Screener.rebuild``)."""

    type: ClassVar[str] = "snapshot"

    stats: Mapping[str, float]  # entries by kind, as the snapshot counts them
    warnings: int  # rows reported and skipped while building it


@dataclass(frozen=True, slots=True)
class EnforcementAnnounced:
    """Something enforcement did (``suspension.created``, ``appeal.approved`` ...): on the
    hub for the live stream, and queued for the webhooks."""

    type: ClassVar[str] = "enforcement"

    id: str  # the delivery id webhooks send (idempotency key for receivers)
    kind: str  # "suspension.created", "trigger.warned", ...
    at: str  # ISO 8601, UTC
    data: Mapping[str, Any]

    def webhook_body(self) -> dict[str, Any]:
        """What a webhook POSTs (its ``type`` is the kind: receivers switch on it)."""
        return {"id": self.id, "type": self.kind, "at": self.at, "data": dict(self.data)}


Event = CallEvent | SnapshotSwapped | EnforcementAnnounced


def wire(event: Event) -> dict[str, Any]:
    """An event as the live stream sends it (field names as the API documents)."""
    if isinstance(event, SnapshotSwapped):
        return {"type": event.type, "stats": dict(event.stats), "warnings": event.warnings}
    if isinstance(event, EnforcementAnnounced):
        return {"type": event.type, "event": event.kind, "id": event.id, "at": event.at,
                "data": dict(event.data)}
    return as_dict(event)


class Subscription:
    def __init__(self, hub: EventHub, size: int) -> None:
        self._hub = hub
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=size)
        self.missed = 0

    def offer(self, event: Event) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.missed += 1
        self.queue.put_nowait(event)

    async def get(self) -> Event:
        return await self.queue.get()

    def close(self) -> None:
        self._hub.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventHub:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []

    def subscribe(self, size: int = 1000) -> Subscription:
        sub = Subscription(self, size)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def publish(self, event: Event) -> None:
        for sub in self._subs:
            sub.offer(event)

    @property
    def subscribers(self) -> int:
        return len(self._subs)
