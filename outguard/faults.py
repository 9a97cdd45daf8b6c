"""Fault points a test arms to prove what a crash at one instant leaves behind.

Armed only by the environment variable ``OUTGUARD_TEST_FAULT`` (point names, comma
separated), read once at import; unarmed (always, in production) a point costs the
adapters one test of an empty set. A reached point that is armed commits the call log,
then kills the process with SIGKILL: nothing after it runs, as with a real ``kill -9``.

* :data:`AFTER_DECISION` - a channel is decided and its call-log row is committed, but
  the verdict is not carried out (no ARI continue / hangup, no FastAGI answer).
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Protocol

logger = logging.getLogger(__name__)

AFTER_DECISION = "after_decision"
POINTS = (AFTER_DECISION,)
ENV = "OUTGUARD_TEST_FAULT"

ARMED: frozenset[str] = frozenset(
    p.strip() for p in os.environ.get(ENV, "").split(",") if p.strip())
if ARMED - set(POINTS):
    raise SystemExit(f"{ENV}: unknown fault point(s) {sorted(ARMED - set(POINTS))}; "
                     f"known: {', '.join(POINTS)}")


class Flushes(Protocol):
    async def flush_async(self) -> int: ...


async def reached(point: str, store: Flushes) -> None:
    """Die here (SIGKILL) if ``point`` is armed, once the call log is committed."""
    if point not in ARMED:
        return
    await store.flush_async()
    logger.critical("fault point %s reached (%s): killing this process", point, ENV)
    os.kill(os.getpid(), signal.SIGKILL)
