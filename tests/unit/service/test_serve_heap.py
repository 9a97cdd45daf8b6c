"""``outguard serve`` freezes what its start left on the heap before it says it runs, so
the garbage collector's full passes (run on the event loop) no longer walk it: a pass
over a started outguard is ~20-35 ms on a 2-core host, ~0 after (bench/gc_pause.py)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from outguard.config import ApiConfig, Settings
from outguard.server import Parts, Started, freeze_startup_heap, serve


async def test_serve_freezes_the_started_heap_before_it_says_it_runs(tmp_path: Path) -> None:
    settings = Settings(store=str(tmp_path / "outguard.db"),
                        api=ApiConfig(host="127.0.0.1", port=0))
    frozen_when_ready: list[int] = []
    running = asyncio.Event()

    def ready(started: Started) -> None:
        frozen_when_ready.append(gc.get_freeze_count())
        running.set()

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    task = asyncio.create_task(serve(settings, Parts(ari=False, agi=False, ami=False),
                                     ready=ready, connect_wait_s=0))
    try:
        await asyncio.wait_for(running.wait(), 30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gc.unfreeze()  # the test process's heap back to the collector
    assert frozen_when_ready and frozen_when_ready[0] > 1000  # the modules, the snapshot...


def test_the_heap_frozen_is_what_survived_a_full_pass() -> None:
    """Garbage in a reference cycle when the heap is frozen would never be freed: the
    freeze comes right after a full pass."""
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    enabled = gc.isenabled()
    gc.disable()  # only the explicit pass may free it
    try:
        Cycle()  # unreachable, in a reference cycle: only a pass frees it
        assert freeze_startup_heap() > 0
        gc.unfreeze()  # what was frozen, back where the collector sees it
        assert not any(type(o) is Cycle for o in gc.get_objects())
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()
