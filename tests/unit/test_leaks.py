"""The integration tests' bounded stop: an outguard that never stops fails its test with
every task still running and where it waits, instead of freezing the teardown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tests import leaks


async def test_a_stop_that_never_ends_fails_naming_where_each_task_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(leaks, "STOP_BOUND_S", 0.2)
    stuck = asyncio.Event()

    async def waits_forever_inside() -> None:
        await stuck.wait()

    async def part(app: web.Application) -> AsyncIterator[None]:
        yield
        await waits_forever_inside()

    app = web.Application()
    app.cleanup_ctx.append(part)
    runner = leaks.BoundedRunner(app)
    await runner.setup()
    leaks.STARTED.append(runner)
    with pytest.raises(AssertionError, match="did not stop within 0.2 s") as failed:
        await runner.cleanup()
    # the awaits are followed down to the innermost coroutine, where it waits
    assert "waits_forever_inside" in str(failed.value)
    assert runner not in leaks.STARTED  # never stopped a second time after the test


async def test_a_stop_that_ends_is_untouched() -> None:
    stopped: list[bool] = []

    async def part(app: web.Application) -> AsyncIterator[None]:
        yield
        stopped.append(True)

    app = web.Application()
    app.cleanup_ctx.append(part)
    runner = leaks.BoundedRunner(app)
    await runner.setup()
    await runner.cleanup()
    assert stopped == [True] and runner.server is None
