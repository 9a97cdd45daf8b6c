"""Enforcement once per cluster: one instance leads, by a PostgreSQL advisory lock.

Automatic enforcement (the triggers, the caller-ID verification sweep) runs on the
instance that holds a session-level advisory lock on a connection of its own; the others
keep their risk figures current (the call feed) but act only on what people ask through
their API or CLI. PostgreSQL releases the lock when the leader's session ends (a clean
stop, a crash, kill -9, a lost network: the server notices the dead connection), and
another instance takes it within ``every_s``.

Why a leader and not idempotent suspension records: each instance would evaluate the same
figures at slightly different moments and with different baselines (warnings, graded
durations, the strike count), so "the same suspension" is not well defined; one leader
makes one decision, audited once, announced once (webhooks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg

logger = logging.getLogger(__name__)

#: the advisory lock's key (any bigint; this one spells "outguard" in the low bytes)
LOCK_KEY = 0x6F75746775617264


class AdvisoryLeader:
    """Holds (or waits for) the cluster's enforcement lock; ``leads`` says which."""

    def __init__(self, url: str, *, key: int = LOCK_KEY, every_s: float = 1.0,
                 on_change: Callable[[bool], None] | None = None) -> None:
        self.url = url
        self.key = key
        self.every_s = every_s
        self.on_change = on_change
        self.leading = False
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    def leads(self) -> bool:
        return self.leading

    def _set(self, leading: bool) -> None:
        if leading != self.leading:
            self.leading = leading
            logger.warning("enforcement: this instance %s the cluster's leader",
                           "is now" if leading else "is no longer")
            if self.on_change is not None:
                self.on_change(leading)

    async def step(self) -> bool:
        """One round: connect if needed, take the lock if free, or check the session that
        holds it is alive. True while leading."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=5,
                    application_name="outguard-leader")
            if self.leading:
                await self._conn.execute("SELECT 1")
            else:
                cur = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
                row = await cur.fetchone()
                self._set(bool(row and row[0]))
        except (psycopg.Error, OSError) as exc:
            if self.leading:
                logger.warning("enforcement: the leader's session failed: %s", exc)
            self._set(False)
            await self.close()
        return self.leading

    async def run(self) -> None:
        """Step every ``every_s`` until cancelled (then let the lock go)."""
        try:
            while True:
                await self.step()
                await asyncio.sleep(self.every_s)
        finally:
            await self.close()
            self._set(False)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            try:
                await conn.close()
            except (psycopg.Error, OSError):
                pass
