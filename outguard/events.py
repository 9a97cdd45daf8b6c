"""In-process publish/subscribe of call events (typed: ``outguard.callevents``), snapshot
swaps and enforcement events (dicts) for the risk figures, metrics and the live feed.

Publishing never blocks and never fails: a subscriber that falls behind loses its oldest
events (it is told how many it missed).
"""

from __future__ import annotations

import asyncio
from typing import Any

from outguard.callevents import CallEvent

Event = CallEvent | dict[str, Any]


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
