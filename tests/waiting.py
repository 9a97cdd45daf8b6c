"""Waiting for something that happens in the background, without timing assumptions.

A test that polls a fixed number of times and then asserts passes on a quiet machine and
fails on a loaded one (CI runs on 2 busy cores): the number of polls was a hidden timing
assertion. ``eventually`` polls until the probe holds or a generous deadline passes, and
then fails naming what it waited for, so a slow machine only makes a test slower, and a
real defect still fails it.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

#: far above any honest wait on a loaded machine; reached only when something is wrong
DEADLINE_S = 60.0


async def eventually(probe: Callable[[], T | Awaitable[T]], what: str,
                     timeout: float = DEADLINE_S, interval: float = 0.005) -> T:
    """Poll ``probe`` (sync or async) until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        value: T = await got if inspect.isawaitable(got) else got  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}"
                                 f" (last: {value!r})")
        await asyncio.sleep(interval)
