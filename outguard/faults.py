"""Fault points a test arms to prove what a crash at one instant leaves behind.

Armed only by the environment variable ``OUTGUARD_TEST_FAULT`` (point names, comma
separated), read once at import; unarmed (always, in production) a point costs the
adapters one test of an empty set. A reached point that is armed commits the call log,
then kills the process with SIGKILL: nothing after it runs, as with a real ``kill -9``.

* :data:`AFTER_DECISION` - a channel is decided and its call-log row is committed, but
  the verdict is not carried out (no ARI continue / hangup, no FastAGI answer).
* :data:`SCREENING_ERROR` - every decision raises (the engine failed): the failure policy
  answers every call (reason ``screening_error``).
* :data:`AFTER_FAILURE` - screening failed and the failure policy is about to be carried
  out: the process dies WITHOUT committing anything more, so the failed call's row is
  there only if it was made durable before (``Screener.failed_durably``).
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Protocol

logger = logging.getLogger(__name__)

AFTER_DECISION = "after_decision"
SCREENING_ERROR = "screening_error"
AFTER_FAILURE = "after_failure"
POINTS = (AFTER_DECISION, SCREENING_ERROR, AFTER_FAILURE)
ENV = "OUTGUARD_TEST_FAULT"

ARMED: frozenset[str] = frozenset(
    p.strip() for p in os.environ.get(ENV, "").split(",") if p.strip())
if ARMED - set(POINTS):
    raise SystemExit(f"{ENV}: unknown fault point(s) {sorted(ARMED - set(POINTS))}; "
                     f"known: {', '.join(POINTS)}")


class Flushes(Protocol):
    async def flush_async(self) -> int: ...


class FaultPoint(RuntimeError):
    """Raised at an armed :data:`SCREENING_ERROR`."""


async def reached(point: str, store: Flushes | None = None) -> None:
    """Die here (SIGKILL) if ``point`` is armed: once the call log is committed when a
    ``store`` is given, at once otherwise."""
    if point not in ARMED:
        return
    if store is not None:
        await store.flush_async()
    logger.critical("fault point %s reached (%s): killing this process", point, ENV)
    os.kill(os.getpid(), signal.SIGKILL)


def raise_if_armed(point: str) -> None:
    """Raise :class:`FaultPoint` if ``point`` is armed."""
    if point in ARMED:
        raise FaultPoint(f"fault point {point} armed ({ENV})")
