"""Shutting background tasks down."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any] | None]) -> None:
    """Cancel the tasks and wait until every one has finished. Their own cancellation is
    swallowed; the first other exception one of them ended with is raised once all have
    finished. The caller's cancellation is not swallowed: cancelled while it waits, it
    raises ``CancelledError`` at once (the tasks, cancelled already, finish on their own),
    so a stop bounded by ``asyncio.timeout`` is bounded."""
    pending = [t for t in tasks if t is not None]
    for task in pending:
        task.cancel()
    if not pending:
        return
    await asyncio.wait(pending)
    for task in pending:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
