"""The store for the event loop: nothing here blocks the loop on SQLite.

``record_decision`` / ``record_outcome`` enqueue (they are plain methods, call them from
the loop); ``flush_async`` awaits the writer; every other ``Store`` method is available as
a coroutine run in an executor (``await astore.get_tenant("t1")``). Change callbacks are
delivered on the loop.

Typical wiring in the service (aiohttp ``cleanup_ctx``)::

    store = SQLiteStore(path)
    astore = AsyncStore(store)
    snapshot = await astore.build_snapshot(now, build)  # load + build off the loop
    await astore.replay_counters(counters, since=time.time() - 7 * 86400)
    astore.subscribe(lambda version: schedule_rebuild())
    poller = astore.start_polling(2.0)  # notice edits by the CLI in another process
    ...
    await astore.aclose()
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from outguard.store.base import CallRecord, Store
from outguard.tasks import cancel_and_wait
from rules.model import StoreData

logger = logging.getLogger(__name__)

T = TypeVar("T")


class AsyncStore:
    """Async facade over any ``Store`` (see the module docstring)."""

    def __init__(self, store: Store, *, executor: Executor | None = None) -> None:
        self.store = store
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(4, thread_name_prefix="outguard-store")
        self._unsubscribes: list[Callable[[], None]] = []
        self._pollers: list[asyncio.Task[None]] = []

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking callable in the store's executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        """Every other Store method, as a coroutine function run in the executor."""
        if name.startswith("_") or name == "store":
            raise AttributeError(name)
        method = getattr(self.store, name)
        if not callable(method):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self.run(method, *args, **kwargs)

        call.__name__ = name
        return call

    # -- the hot path: enqueue only ---------------------------------------------------

    def record_decision(self, call: CallRecord) -> None:
        self.store.record_decision(call)

    def record_outcome(self, decision_id: str, *, answered_at: float | None,
                       ended_at: float | None, duration: float | None,
                       cause: int | None, note: str | None = None) -> None:
        self.store.record_outcome(decision_id, answered_at=answered_at, ended_at=ended_at,
                                  duration=duration, cause=cause, note=note)

    async def flush_async(self) -> int:
        """Return once every row enqueued so far is committed."""
        future = getattr(self.store, "flush_future", None)
        if future is not None:
            return int(await asyncio.wrap_future(future()))
        return await self.run(self.store.flush)

    # -- snapshot and counters --------------------------------------------------------

    async def build_snapshot(self, now: datetime, build: Callable[[StoreData], T]) -> T:
        """Load the store data and run ``build`` on it, both off the loop."""
        return await self.run(lambda: build(self.store.load_store_data(now)))

    async def replay_counters(self, counters: Any, since: float) -> int:
        """Replay allowed calls since ``since`` into ``counters.rebuild`` off the loop.

        Only before the counters are in use: InMemoryCounters is not thread-safe.
        """
        return int(await self.run(
            lambda: counters.rebuild(self.store.iter_counter_rows_since(since))
        ))

    # -- change notification ----------------------------------------------------------

    def subscribe(self, callback: Callable[[int], object]) -> Callable[[], None]:
        """Call ``callback(version)`` on this loop after each change to the data."""
        loop = asyncio.get_running_loop()

        def deliver(version: int) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(callback, version)

        unsubscribe = self.store.subscribe(deliver)
        self._unsubscribes.append(unsubscribe)
        return unsubscribe

    def start_polling(self, interval_s: float = 2.0) -> asyncio.Task[None]:
        """Poll for changes made by other processes; subscribers hear about them."""
        task = asyncio.get_running_loop().create_task(self._poll(interval_s))
        self._pollers.append(task)
        return task

    async def _poll(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.run(self.store.check_external_changes)
            except Exception as exc:  # keep polling; the store may come back
                logger.warning("store change poll failed: %s", exc)

    async def aclose(self) -> None:
        """Stop polling, flush, close the store and the executor."""
        await cancel_and_wait(self._pollers)
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        await self.run(self.store.close)
        if self._own_executor:
            self._executor.shutdown(wait=False)
