"""Every task outguard runs can be cancelled: no ``asyncio.wait_for`` in the product.

On Python 3.11 (the oldest outguard supports) ``asyncio.wait_for`` swallows a cancellation
that arrives in the loop iteration where its inner awaitable completes: it returns the
result instead of raising ``CancelledError`` (CPython gh-86296, fixed in 3.12). A task
that loops (the AMI client's reconnect loop, the bridge's event loop) then never ends, and
shutdown waits for it forever: that is what made
``test_an_unanswered_ping_drops_the_connection`` hang until its 120 s timeout. The product
uses ``async with asyncio.timeout(...)``, which tells its own cancellation from another's.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGES = ("rules", "outguard", "ari_app", "agi")


def test_the_product_never_uses_asyncio_wait_for() -> None:
    uses = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\basyncio\.wait_for\(|\bimport\b.*\bwait_for\b", line)
    ]
    assert uses == [], "use `async with asyncio.timeout(...)` instead: " + ", ".join(uses)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="CPython fixed wait_for in 3.12")
async def test_why_wait_for_is_banned_on_python_3_11() -> None:
    """If this starts failing on 3.11, wait_for has been fixed there too."""
    loop = asyncio.get_running_loop()
    for wrap in ("wait_for", "timeout"):
        inner: asyncio.Future[int] = loop.create_future()

        async def awaiting(wrap: str = wrap, inner: asyncio.Future[int] = inner) -> int:
            if wrap == "wait_for":
                return await asyncio.wait_for(inner, 5)
            async with asyncio.timeout(5):
                return await inner

        task = loop.create_task(awaiting())
        await asyncio.sleep(0)
        inner.set_result(1)
        task.cancel()  # in the same iteration as the completion
        outcome = await asyncio.gather(task, return_exceptions=True)
        if wrap == "wait_for":
            assert outcome == [1]  # the cancellation is lost
        else:
            assert isinstance(outcome[0], asyncio.CancelledError)
