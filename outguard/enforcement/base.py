"""The enforcer's state and plumbing: risk book, ledger, event intake, announcements,
start and stop. ``Enforcer`` (api.py) adds the operations."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

from outguard.enforcement.ledger import Ledger
from outguard.enforcement.policy import EnforcementPolicy, validate_enforcement
from outguard.enforcement.risk import RiskBook
from outguard.enforcement.webhooks import WebhookSender
from outguard.callevents import CallDecided, CallEnded, CallEvent
from outguard.errors import InvalidInput
from outguard.events import EnforcementAnnounced, Event, EventHub, Subscription
from outguard.store.aio import AsyncStore
from outguard.figures import attribute_complaint
from outguard.store.base import Complaint, LoggedCall, Suspension
from outguard.tasks import cancel_and_wait
from rules.errors import NumberError
from rules.model import PartyKind
from rules.numbers import normalise
from rules.policy_types import Policy

logger = logging.getLogger(__name__)

Kind = PartyKind | str
PartyKey = tuple[PartyKind, str]


class CallSource(Protocol):
    """Where the risk figures' call events come from in cluster mode: every instance's
    calls (``outguard.cluster.feed.CallFeed``) instead of this process's event hub."""

    async def mark(self) -> str: ...

    def events(self, after: str) -> AsyncIterator[CallEvent]: ...


#: how far back the replay's call ids are kept to skip the feed's copies of them
FEED_OVERLAP_S = 300.0


class EnforcerBase:
    def __init__(self, store: AsyncStore, policy: Policy, *, events: EventHub | None = None,
                 clock: Callable[[], float] = time.time,
                 config: EnforcementPolicy | None = None, poll_s: float = 1.0,
                 feed: CallSource | None = None,
                 leads: Callable[[], bool] | None = None) -> None:
        self.store = store
        #: cluster mode: every instance's calls; None: this process's hub
        self.feed = feed
        #: cluster mode: True on the one instance that runs automatic enforcement
        self.leads: Callable[[], bool] = leads if leads is not None else (lambda: True)
        self._replayed: dict[str, bool] = {}  # call id -> ended, the replay's last minutes
        self.poll_s = poll_s
        self.deadline_poll_s = 60.0  # complaint deadlines checked this often
        self.policy = policy
        self.events = events if events is not None else EventHub()
        self.clock = clock
        self.config = config if config is not None else validate_enforcement(policy)
        self.book = RiskBook(short_call_s=self.config.short_call_s,
                             retention_s=self.config.longest_window_s + 86400.0)
        self.ledger = Ledger()
        self.webhooks = WebhookSender(self.config.webhooks)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stale = True
        self._full_pending = False
        self._warned: dict[tuple[str, PartyKey], float] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._complaint_mark = 0  # the newest complaint/mark row counted (by id)
        self._pull_lock = asyncio.Lock()
        self._sub: Subscription | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def _apply(self, config: EnforcementPolicy) -> None:
        self.config = config
        self.book.short_call_s = config.short_call_s
        self.book.retention_s = max(self.book.retention_s, config.longest_window_s + 86400.0)
        self.webhooks.configure(config.webhooks)
        self._full_pending = True  # new thresholds: check every party once
        self._wake.set()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, *, background: bool = True, replay: bool = True) -> list[Any]:
        """Replay the call log and complaints into the figures (``replay``; a one-shot
        CLI command that only suspends or lifts can skip it), load the suspensions,
        subscribe to the event hub and the store, start webhook delivery and (with
        ``background``: the running service) evaluate every trigger on the rebuilt
        figures, then start event intake, the complaint feed, the debounced evaluation
        and the sweep. Returns what that first evaluation did: the caller rebuilds the
        call path's snapshot before the first call when it suspended anyone."""
        position = await self.feed.mark() if self.feed is not None else ""
        if replay:
            since = self.clock() - self.book.retention_s
            inner = self.store.store
            recent, seen = self.clock() - FEED_OVERLAP_S, self._replayed

            def rows() -> Iterator[LoggedCall]:  # remembers the ids the feed may repeat
                for c in inner.iter_calls_since(since, allowed_only=False):
                    if c.call.at >= recent:
                        seen[c.call.decision_id] = c.ended_at is not None
                    yield c

            calls = await self.store.run(lambda: self.book.replay(
                rows() if self.feed is not None else inner.iter_calls_since(
                    since, allowed_only=False)))
            upto = await self.store.max_complaint_id()
            complaints = await self._pull_complaints(
                since=datetime.fromtimestamp(since, UTC), upto=upto)
            self._complaint_mark = upto
            self.book.dirty.clear()
            logger.info("enforcement: replayed %d calls and %d complaints/marks; %d triggers",
                        calls, complaints, len(self.config.triggers))
        else:
            self._complaint_mark = await self.store.max_complaint_id()
        await self._refresh()
        self._unsubscribe = self.store.subscribe(self._store_changed)
        if self.feed is None:
            self._sub = self.events.subscribe(size=20_000)
        self.webhooks.start()
        fired: list[Any] = []
        if background:
            if self.leads():
                fired = await self.evaluate(everything=True)
            loop = asyncio.get_running_loop()
            if self.feed is not None:
                self._tasks.append(loop.create_task(self._feed_intake(self.feed, position)))
            elif self._sub is not None:
                self._tasks.append(loop.create_task(self._intake(self._sub)))
            self._tasks.append(loop.create_task(self._loop()))
            self._tasks.append(loop.create_task(self._complaint_feed()))
            self._tasks.append(loop.create_task(self._first_sweep()))
            self._tasks.append(loop.create_task(self._deadline_loop()))
        return fired

    async def evaluate(self, *, everything: bool = True) -> list[Any]:  # pragma: no cover
        raise NotImplementedError

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        await self.webhooks.stop()

    def leadership_changed(self, leading: bool) -> None:
        """Cluster mode: this instance became (or stopped being) the enforcement leader;
        a new leader checks every party at once."""
        if leading:
            self._full_pending = True
            self._wake.set()

    async def _first_sweep(self) -> None:
        if not self.leads():
            return
        try:
            await self.sweep_caller_ids()
        except Exception:
            logger.exception("caller-ID verification sweep failed")

    async def sweep_caller_ids(self) -> Any:  # pragma: no cover - api.Enforcer defines it
        raise NotImplementedError

    async def _loop(self) -> None:  # pragma: no cover - api.Enforcer defines it
        raise NotImplementedError

    async def _deadline_loop(self) -> None:  # pragma: no cover - intake defines it
        raise NotImplementedError

    def _store_changed(self, _version: int) -> None:
        """Another writer (the CLI, another instance) changed suspensions, appeals or
        parties: reload them and re-check the triggers soon."""
        self._stale = True
        self._wake.set()

    async def _refresh(self) -> None:
        """Reload suspensions and approved appeals when the store changed."""
        if not self._stale:
            return
        self._stale = False
        suspensions: list[Suspension] = await self.store.list_suspensions()
        appeals = await self.store.list_appeals(state="approved")
        self.ledger.load(suspensions, appeals)

    # -- event intake ---------------------------------------------------------------------

    async def _intake(self, sub: Subscription) -> None:
        while True:
            event = await sub.get()
            try:
                self.observe(event)
            except Exception:
                logger.exception("enforcement: bad event %r", event)

    async def _feed_intake(self, feed: CallSource, position: str) -> None:
        """Cluster mode: fold every instance's call events (skipping those the replay
        already counted)."""
        seen = self._replayed
        forget_after = self.clock() + FEED_OVERLAP_S  # no copy of a replayed call after that
        async for event in feed.events(position):
            if seen and event.at > forget_after:
                seen.clear()
            if seen and event.call_id in seen:
                if isinstance(event, CallDecided) or seen[event.call_id]:
                    continue  # counted by the replay (a decision, or an outcome it had)
            try:
                self.observe(event)
            except Exception:
                logger.exception("enforcement: bad event %r", event)

    def pump(self) -> int:
        """Fold the hub events waiting now, without the background task (tests, tools)."""
        n = 0
        while self._sub is not None and not self._sub.queue.empty():
            self.observe(self._sub.queue.get_nowait())
            n += 1
        return n

    def observe(self, event: Event) -> None:
        """Fold one call event (decided / ended) into the figures; wake the debounced
        evaluation. Other events are ignored."""
        if isinstance(event, CallDecided):
            self.book.decision(
                decision_id=event.call_id, at=event.at, tenant=event.tenant,
                account=event.account, caller_id=event.caller_id, callee=event.destination,
                allowed=event.allowed, reason=event.reason, failed=event.failed,
            )
        elif isinstance(event, CallEnded):
            self.book.outcome(at=event.at, answered=event.answered, duration=event.duration,
                              tenant=event.tenant, account=event.account,
                              caller_id=event.caller_id)
        else:
            return
        self._wake.set()

    async def _complaint_feed(self) -> None:
        """Count the complaints and marks any process stored (the CLI, a CSV import,
        another instance), by id watermark, every ``poll_s``."""
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self._pull_complaints()
            except Exception as exc:  # the store may come back; the watermark waits
                logger.warning("enforcement: reading new complaints failed: %s", exc)

    async def _pull_complaints(self, *, since: datetime | None = None,
                               upto: int | None = None) -> int:
        """Feed every stored complaint/mark after the watermark into the figures, once
        each, whichever process or path stored it; wake the evaluation if any."""
        n = 0
        async with self._pull_lock:
            while True:
                rows: list[Complaint] = await self.store.complaints_after(
                    self._complaint_mark, since=since, upto_id=upto)
                if not rows:
                    break
                for c in rows:
                    self._feed_complaint(c.kind, c.caller_id, c.reporter or "", c.tenant_id,
                                         c.account_id, c.at.timestamp())
                    self._complaint_mark = max(self._complaint_mark, c.id)
                n += len(rows)
        if n:
            self._wake.set()
        return n

    def _attribute(self, caller_id: str, callee: str, tenant: str | None,
                   account: str | None) -> tuple[str | None, str | None]:
        """Who a complaint counts against (``figures.attribute_complaint``)."""
        return attribute_complaint(
            tenant, account, self.book.last_call(caller_id, callee) if callee else None)

    def _feed_complaint(self, kind: str, caller_id: str, callee: str, tenant: str | None,
                        account: str | None, at: float) -> tuple[str | None, str | None]:
        """Count a complaint or mark; returns the (tenant, account) it was attributed to.
        One older than the figures keep (an old file imported) is stored, not counted."""
        tenant, account = self._attribute(caller_id, callee, tenant, account)
        if at < self.clock() - self.book.retention_s:
            return tenant, account
        if kind == "mark":
            self.book.mark(at=at, caller_id=caller_id, reporter=callee or "?", tenant=tenant)
        else:
            self.book.complaint(at=at, caller_id=caller_id, tenant=tenant, account=account)
        return tenant, account

    # -- helpers -------------------------------------------------------------------------

    def _kind(self, kind: Kind) -> PartyKind:
        try:
            return PartyKind(kind)
        except ValueError as exc:
            raise InvalidInput(f"unknown party kind {kind!r} (tenant, account, caller_id)",
                               field="kind") from exc

    def _number(self, raw: str, field: str) -> str:
        try:
            return normalise(raw, self.policy.default_region)
        except (NumberError, ValueError) as exc:
            raise InvalidInput(f"{field}: {exc}", field=field, value=raw) from exc

    def _party(self, kind: Kind, key: str) -> PartyKey:
        pk = self._kind(kind)
        key = key.strip()
        if not key:
            raise InvalidInput("an empty party key", field="key")
        if pk is PartyKind.CALLER_ID:
            key = self._number(key, "caller_id")
        return pk, key

    def _announce(self, kind: str, data: dict[str, Any]) -> None:
        """Publish an enforcement event on the hub and queue it for the webhooks."""
        event = EnforcementAnnounced(
            uuid.uuid4().hex, kind, datetime.fromtimestamp(self.clock(), UTC).isoformat(), data)
        self.events.publish(event)
        self.webhooks.announce(event)
