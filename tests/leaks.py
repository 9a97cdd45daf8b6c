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
