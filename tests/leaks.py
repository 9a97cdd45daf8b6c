"""What a test starts must not outlive it: an outguard a test started and did not stop (a
failure before its cleanup) keeps its ARI app connected to the session's Asterisk under
the same application name. After a reconnect it can win the registration and screen later
tests' calls with its own lists: a dnc call allowed after an Asterisk restart (SIP 603 once
Dial timed out), two tests after the one that left it.

One module (not tests/integration/conftest.py, which pytest imports twice: as ``conftest``
for its fixtures and as ``tests.integration.conftest`` for the tests' imports), so that
there is one record of what was started.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

#: what runs while an outguard of this process is up (its ARI apps and AMI listeners)
OUTGUARD_TASKS = ("StasisApp.run", "AmiListener.run")
#: every outguard the integration helpers started, until the check after its test
STARTED: list[web.AppRunner] = []
#: how long an outguard of a test may take to stop (its parts' stops are bounded by a few
#: seconds each)
STOP_BOUND_S = 30.0


def task_stacks() -> str:
    """Every task of the running loop and where it waits, its awaits followed down to the
    innermost (``Task.get_stack`` gives a suspended coroutine's outermost frame only)."""
    lines = []
    for task in sorted(asyncio.all_tasks(), key=lambda t: t.get_name()):
        where = []
        coro: Any = task.get_coro()
        for _ in range(100):
            if coro is None:
                break
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None) \
                or getattr(coro, "gi_frame", None)
            if frame is not None:
                where.append(f"{frame.f_code.co_filename}:{frame.f_lineno}"
                             f" {frame.f_code.co_name}")
            inner = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None) \
                or getattr(coro, "gi_yieldfrom", None)
            if inner is not None and not _steps(inner) and frame is not None:
                # ``anext(gen)`` (an async context manager's exit: a cleanup context's
                # stop) hides its generator: found in the waiting frame's ``self.gen``
                gen = getattr(frame.f_locals.get("self"), "gen", None)
                inner = gen if gen is not None and _steps(gen) else inner
            coro = inner if _steps(inner) else None
        lines.append(f"{task.get_name()}: " + " -> ".join(where or [repr(task)]))
    return "\n".join(lines)


def _steps(obj: Any) -> bool:
    """A coroutine, async generator or generator (something awaits can be followed in)."""
    return any(hasattr(obj, a) for a in ("cr_frame", "ag_frame", "gi_frame"))


class BoundedRunner(web.AppRunner):
    """An outguard of a test whose stop is bounded: past ``STOP_BOUND_S`` the test fails
    with every task still running and where it waits (a stop that never ended once froze
    a teardown until pytest-timeout, whose dump shows threads, not tasks)."""

    async def cleanup(self) -> None:
        # the stop runs as a task of its own, so where it waits can be read before it is
        # cancelled
        stop = asyncio.ensure_future(super().cleanup())
        done, _ = await asyncio.wait([stop], timeout=STOP_BOUND_S)
        if done:
            return stop.result()
        stacks = task_stacks()
        stop.cancel()
        await asyncio.gather(stop, return_exceptions=True)
        if self in STARTED:  # half stopped: not stopped again after the test
            STARTED.remove(self)
        raise AssertionError(f"outguard did not stop within {STOP_BOUND_S:g} s; the tasks"
                             f" still running:\n{stacks}")


def outguard_task(task: asyncio.Task[Any]) -> str | None:
    """The name of an outguard part's task still running, else None."""
    name = getattr(task.get_coro(), "__qualname__", "")
    return name if name in OUTGUARD_TASKS and not task.done() else None


async def stop_what_was_left() -> list[str]:
    """Stop every outguard still running (those started through STARTED cleanly, any
    other part's task by cancelling it); what was left, for the test's failure."""
    left = [runner for runner in STARTED if runner.server is not None]
    STARTED.clear()
    for runner in left:
        await runner.cleanup()
    tasks = [t for t in asyncio.all_tasks() if outguard_task(t)]
    found = ["an outguard started with start_outguard"] * len(left)
    found += sorted(str(outguard_task(t)) for t in tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return found
