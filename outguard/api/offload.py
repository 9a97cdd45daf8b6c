"""CPU-bound work an API client asks for, kept off the process that screens calls.

Checking policy text (``POST /api/policy/validate``) parses TOML and validates every rule:
hundreds of milliseconds for a large policy, time the event loop (and the GIL) would take
from calls in progress. It runs in one worker process instead (``forkserver``, started on
first use and kept warm). A check that runs past ``timeout_s`` or kills its worker is
answered as invalid with the reason, and the worker is replaced.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from aiohttp import web

from outguard.policy_file import check_text
from rules.errors import PolicyError, PolicyIssue

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 20.0


class Offload:
    """One worker process for policy checks (see the module docstring)."""

    def __init__(self, timeout_s: float = CHECK_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("forkserver"))
        return self._pool

    async def check_policy(self, text: str, policy_dir: str | None) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor(), check_text, text, policy_dir)
        try:
            async with asyncio.timeout(self.timeout_s):
                return await future
        except asyncio.TimeoutError:
            self._replace("took longer than %s s" % self.timeout_s)
            reason = f"checking took longer than {self.timeout_s:g} s"
        except BrokenProcessPool:
            self._replace("its worker stopped")
            reason = "the checker stopped on this policy"
        return {"valid": False, "issues": [
            {"file": "<request>", "line": 0, "key": "", "message": reason}]}

    async def require_valid(self, text: str, policy_dir: str | None) -> None:
        """Raise PolicyError listing every problem of ``text`` (checked as
        :meth:`check_policy` does): work that needs a valid policy starts only after this."""
        checked = await self.check_policy(text, policy_dir)
        if not checked["valid"]:
            raise PolicyError([PolicyIssue(i["file"], i["line"], i["key"], i["message"])
                               for i in checked["issues"]])

    def _replace(self, why: str) -> None:
        logger.warning("policy check %s; starting a new worker", why)
        pool, self._pool = self._pool, None
        if pool is not None:
            for process in list(pool._processes.values()):  # no public way to stop a task
                process.kill()
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


OFFLOAD = web.AppKey("offload", Offload)
