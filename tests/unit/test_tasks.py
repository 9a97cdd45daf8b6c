"""outguard.tasks.cancel_and_wait: every stop path's way of ending its background tasks."""

from __future__ import annotations

import asyncio

import pytest

from outguard.tasks import cancel_and_wait


async def slow_to_stop(stopped: asyncio.Event, cleanup_s: float) -> None:
    """Runs until cancelled, then takes ``cleanup_s`` to clean up (a connection closed, a
    spool flushed)."""
    try:
        await asyncio.Event().wait()
    finally:
        await asyncio.sleep(cleanup_s)
        stopped.set()


async def test_the_tasks_own_cancellation_is_swallowed_once_all_finished() -> None:
    stopped = [asyncio.Event() for _ in range(3)]
    tasks = [asyncio.create_task(slow_to_stop(e, 0.01 * i)) for i, e in enumerate(stopped)]
    await asyncio.sleep(0)
    await cancel_and_wait([*tasks, None])
    assert all(e.is_set() for e in stopped) and all(t.done() for t in tasks)


async def test_the_callers_cancellation_is_not_swallowed() -> None:
    """A stop cancelled while it waits (shutdown cut short, a test's bounded teardown)
    ends then; it used to go on waiting, its cancellation lost."""
    stopped = asyncio.Event()
    task = asyncio.create_task(slow_to_stop(stopped, 5.0))
    await asyncio.sleep(0)
    went_on = False

    async def stop() -> None:
        nonlocal went_on
        await cancel_and_wait([task])
        went_on = True

    stopping = asyncio.create_task(stop())
    await asyncio.sleep(0.05)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert not went_on and not stopped.is_set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_stop_bounded_by_a_timeout_is_bounded() -> None:
    stopped = asyncio.Event()
    task = asyncio.create_task(slow_to_stop(stopped, 5.0))
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await cancel_and_wait([task])
    assert loop.time() - began < 2.0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_task_that_fails_raises_once_every_task_finished() -> None:
    stopped = asyncio.Event()

    async def fails_on_cancel() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            raise RuntimeError("cleanup failed")

    failing = asyncio.create_task(fails_on_cancel())
    slow = asyncio.create_task(slow_to_stop(stopped, 0.05))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="cleanup failed"):
        await cancel_and_wait([failing, slow])
    assert slow.done() and stopped.is_set()  # not left running behind the failure
