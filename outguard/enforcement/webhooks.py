"""Webhooks: each enforcement event POSTed as JSON to every configured URL.

Delivery runs in one background task fed by a bounded queue, so announcing never blocks
anything (a full queue drops the event with a warning). Each request carries

* ``X-Outguard-Event``: the event type, e.g. ``suspension.created``;
* ``X-Outguard-Delivery``: the event id (the same on every retry: receivers de-duplicate);
* ``X-Outguard-Signature``: ``sha256=<hex HMAC-SHA256 of the raw body>`` with the secret
  read from the environment variable the policy names (absent when the variable is unset).

A 2xx answer is success; anything else (or a connection error / timeout) is retried with
exponential backoff up to ``max_attempts``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from outguard.enforcement.policy import WebhookSpec
from outguard.events import EnforcementAnnounced
from outguard.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Outguard-Signature"
EVENT_HEADER = "X-Outguard-Event"
DELIVERY_HEADER = "X-Outguard-Delivery"


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str) -> bool:
    """What a receiver does: constant-time comparison of the signature header."""
    return hmac.compare_digest(sign(secret, body), header)


@dataclass(slots=True)
class WebhookStats:
    queued: int = 0
    delivered: int = 0
    failed: int = 0  # gave up after max_attempts (per URL)
    dropped: int = 0  # queue full


class WebhookSender:
    """Owns the queue and the delivery task; ``announce`` never blocks."""

    def __init__(self, spec: WebhookSpec, *,
                 sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        self.spec = spec
        self.stats = WebhookStats()
        self._sleep = sleep
        self._queue: asyncio.Queue[EnforcementAnnounced] = asyncio.Queue(maxsize=spec.queue_size)
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._warned_secret = False

    def configure(self, spec: WebhookSpec) -> None:
        """A new policy: new URLs and settings for events queued from now on."""
        self.spec = spec

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, drain_s: float = 2.0) -> None:
        """Deliver what is queued for up to ``drain_s`` seconds, then stop."""
        if self._task is None:
            return
        try:
            async with asyncio.timeout(drain_s):
                await self._queue.join()
        except asyncio.TimeoutError:
            logger.warning("webhooks: %d event(s) not delivered at shutdown",
                           self._queue.qsize())
        await cancel_and_wait([self._task])
        self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def announce(self, event: EnforcementAnnounced) -> bool:
        """Queue an event for delivery. False when dropped."""
        if not self.spec.urls:
            return False
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.stats.dropped += 1
            logger.warning("webhooks: queue full, event %s (%s) dropped",
                           event.id, event.kind)
            return False
        self.stats.queued += 1
        return True

    async def idle(self) -> None:
        """Return once everything queued so far was delivered or given up (tests)."""
        await self._queue.join()

    def _secret(self) -> bytes | None:
        value = os.environ.get(self.spec.secret_env, "")
        if not value:
            if not self._warned_secret:
                logger.warning("webhooks: %s is not set; deliveries are not signed",
                               self.spec.secret_env)
                self._warned_secret = True
            return None
        return value.encode()

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                body = json.dumps(event.webhook_body(), ensure_ascii=False, sort_keys=True,
                                  default=str).encode()
                for url in self.spec.urls:
                    await self._deliver(url, body, event)
            except Exception:
                logger.exception("webhooks: delivery of %s failed", event.id)
            finally:
                self._queue.task_done()

    async def _deliver(self, url: str, body: bytes, event: EnforcementAnnounced) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json", EVENT_HEADER: event.kind,
                   DELIVERY_HEADER: event.id}
        secret = self._secret()
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret, body)
        timeout = aiohttp.ClientTimeout(total=self.spec.timeout_s)
        for attempt in range(1, self.spec.max_attempts + 1):
            try:
                async with self._session.post(url, data=body, headers=headers,
                                              timeout=timeout) as resp:
                    if 200 <= resp.status < 300:
                        self.stats.delivered += 1
                        return True
                    why = f"HTTP {resp.status}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                why = f"{type(exc).__name__}: {exc}"
            if attempt < self.spec.max_attempts:
                delay = self.spec.backoff_s * 2 ** (attempt - 1)
                logger.info("webhooks: %s to %s failed (%s), retry %d in %.1f s",
                            event.id, url, why, attempt, delay)
                await self._sleep(delay)
            else:
                logger.warning("webhooks: giving up on %s to %s after %d attempts (%s)",
                               event.id, url, attempt, why)
        self.stats.failed += 1
        return False
