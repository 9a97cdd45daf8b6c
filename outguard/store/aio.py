"""The store for the event loop: nothing here blocks the loop on SQLite.

``record_decision`` / ``record_outcome`` enqueue (they are plain methods, call them from
the loop); ``flush_async`` awaits the writer; every other ``Store`` method is a coroutine
of the same name and types run in an executor (``await astore.get_tenant("t1")``), written
out one by one so that mypy checks every call; ``run`` runs anything else (a generator
drained into a list, say). Change callbacks are delivered on the loop.

Typical wiring in the service (aiohttp ``cleanup_ctx``)::

    store = SQLiteStore(path)
    astore = AsyncStore(store)
    snapshot = await astore.build_snapshot(now, build)  # load + build off the loop
    await astore.replay_counters(counters, since=time.time() - 7 * 86400)
    astore.subscribe(lambda version: schedule_rebuild())
    poller = astore.start_polling(2.0)  # notice edits by the CLI in another process
    ...
    await astore.aclose()
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

from outguard.store.consent import ConsentEvent, ConsentInput
from outguard.store.base import (
    Account,
    AccountMapping,
    Appeal,
    AppealState,
    AuditRecord,
    CallerId,
    CallRecord,
    Complaint,
    Entry,
    ImportResult,
    ListRecord,
    LoggedCall,
    NewToken,
    Store,
    Suspension,
    Tenant,
    User,
)
from outguard.store.health import HealthTask
from outguard.tasks import cancel_and_wait
from rules.counters import InMemoryCounters
from rules.model import ListKind, PartyKind, Scope, StoreData

logger = logging.getLogger(__name__)

T = TypeVar("T")


class AsyncStore:
    """Async facade over any ``Store`` (see the module docstring)."""

    def __init__(self, store: Store, *, executor: Executor | None = None) -> None:
        self.store = store
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(4, thread_name_prefix="outguard-store")
        self._unsubscribes: list[Callable[[], None]] = []
        self._pollers: list[asyncio.Task[None]] = []

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking callable in the store's executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    # -- every other Store method, run in the executor (typed one by one) -----------

    async def data_version(self) -> int:
        return await self.run(self.store.data_version)

    async def check_external_changes(self) -> bool:
        return await self.run(self.store.check_external_changes)

    async def create_tenant(
        self, id: str, name: str, *, settings: dict[str, Any] | None = None,
        actor: str = "system",
    ) -> Tenant:
        return await self.run(
            self.store.create_tenant, id, name, settings=settings, actor=actor)

    async def get_tenant(self, id: str) -> Tenant:
        return await self.run(self.store.get_tenant, id)

    async def list_tenants(self) -> list[Tenant]:
        return await self.run(self.store.list_tenants)

    async def set_tenant_state(self, id: str, state: str, *, actor: str = "system") -> Tenant:
        return await self.run(self.store.set_tenant_state, id, state, actor=actor)

    async def create_account(
        self, id: str, tenant_id: str, *, kind: str = "agent", name: str = "",
        actor: str = "system",
    ) -> Account:
        return await self.run(
            self.store.create_account, id, tenant_id, kind=kind, name=name, actor=actor)

    async def get_account(self, id: str) -> Account:
        return await self.run(self.store.get_account, id)

    async def list_accounts(self, tenant_id: str | None = None) -> list[Account]:
        return await self.run(self.store.list_accounts, tenant_id)

    async def set_account_state(self, id: str, state: str, *, actor: str = "system") -> Account:
        return await self.run(self.store.set_account_state, id, state, actor=actor)

    async def add_account_mapping(
        self, match_kind: str, pattern: str, account_id: str, *, priority: int = 0,
        actor: str = "system",
    ) -> AccountMapping:
        return await self.run(
            self.store.add_account_mapping, match_kind, pattern, account_id,
            priority=priority, actor=actor)

    async def remove_account_mapping(self, mapping_id: int, *, actor: str = "system") -> None:
        return await self.run(self.store.remove_account_mapping, mapping_id, actor=actor)

    async def list_account_mappings(self) -> list[AccountMapping]:
        return await self.run(self.store.list_account_mappings)

    async def resolve_account(
        self, *, endpoint: str = "", channel: str = "", callerid: str = "",
    ) -> str | None:
        return await self.run(
            self.store.resolve_account, endpoint=endpoint, channel=channel,
            callerid=callerid)

    async def upsert_caller_id(
        self, e164: str, tenant_id: str, *, type: str = "unknown",
        verification: str = "missing", verified_until: datetime | None = None,
        state: str = "active", actor: str = "system",
    ) -> CallerId:
        return await self.run(
            self.store.upsert_caller_id, e164, tenant_id, type=type,
            verification=verification, verified_until=verified_until, state=state,
            actor=actor)

    async def get_caller_id(self, e164: str) -> CallerId:
        return await self.run(self.store.get_caller_id, e164)

    async def list_caller_ids(self, tenant_id: str | None = None) -> list[CallerId]:
        return await self.run(self.store.list_caller_ids, tenant_id)

    async def create_user(self, name: str, role: str, *, actor: str = "system") -> User:
        return await self.run(self.store.create_user, name, role, actor=actor)

    async def get_user(self, name: str) -> User:
        return await self.run(self.store.get_user, name)

    async def list_users(self) -> list[User]:
        return await self.run(self.store.list_users)

    async def set_user_disabled(
        self, name: str, disabled: bool, *, actor: str = "system",
    ) -> User:
        return await self.run(self.store.set_user_disabled, name, disabled, actor=actor)

    async def create_token(
        self, user_name: str, *, label: str = "", actor: str = "system",
    ) -> NewToken:
        return await self.run(self.store.create_token, user_name, label=label, actor=actor)

    async def revoke_token(self, token_id: str, *, actor: str = "system") -> None:
        return await self.run(self.store.revoke_token, token_id, actor=actor)

    async def verify_token(self, token: str) -> User:
        return await self.run(self.store.verify_token, token)

    async def create_list(
        self, name: str, kind: ListKind | str, *,
        scope: Scope | str = Scope.GLOBAL, scope_key: str | None = None,
        description: str = "", actor: str = "system",
    ) -> ListRecord:
        return await self.run(
            self.store.create_list, name, kind, scope=scope, scope_key=scope_key,
            description=description, actor=actor)

    async def get_list(self, name: str) -> ListRecord:
        return await self.run(self.store.get_list, name)

    async def list_lists(self) -> list[ListRecord]:
        return await self.run(self.store.list_lists)

    async def delete_list(self, name: str, *, actor: str = "system") -> None:
        return await self.run(self.store.delete_list, name, actor=actor)

    async def add_entries(
        self, list_name: str, numbers: Sequence[str], *, expires_at: datetime | None = None,
        source: str = "manual", reason: str | None = None, evidence: str | None = None,
        actor: str = "system",
    ) -> int:
        return await self.run(
            self.store.add_entries, list_name, numbers, expires_at=expires_at, source=source,
            reason=reason, evidence=evidence, actor=actor)

    async def remove_entries(
        self, list_name: str, numbers: Sequence[str], *, actor: str = "system",
    ) -> int:
        return await self.run(self.store.remove_entries, list_name, numbers, actor=actor)

    async def find_entries(self, e164: str) -> list[Entry]:
        return await self.run(self.store.find_entries, e164)

    async def count_entries(self, list_name: str) -> int:
        return await self.run(self.store.count_entries, list_name)

    async def purge_expired(self, now: datetime) -> int:
        return await self.run(self.store.purge_expired, now)

    async def create_suspension(
        self, party_kind: PartyKind | str, party_key: str, *, reason: str, created_by: str,
        trigger: str = "", started_at: datetime | None = None,
        ends_at: datetime | None = None,
    ) -> Suspension:
        return await self.run(
            self.store.create_suspension, party_kind, party_key, reason=reason,
            created_by=created_by, trigger=trigger, started_at=started_at, ends_at=ends_at)

    async def lift_suspension(
        self, suspension_id: int, *, lifted_by: str, lift_reason: str,
        lifted_at: datetime | None = None,
    ) -> Suspension:
        return await self.run(
            self.store.lift_suspension, suspension_id, lifted_by=lifted_by,
            lift_reason=lift_reason, lifted_at=lifted_at)

    async def get_suspension(self, suspension_id: int) -> Suspension:
        return await self.run(self.store.get_suspension, suspension_id)

    async def list_suspensions(
        self, *, party_kind: PartyKind | str | None = None, party_key: str | None = None,
        active_at: datetime | None = None,
    ) -> list[Suspension]:
        return await self.run(
            self.store.list_suspensions, party_kind=party_kind, party_key=party_key,
            active_at=active_at)

    async def create_appeal(
        self, party_kind: PartyKind | str, party_key: str, *, text: str, evidence: str = "",
        suspension_id: int | None = None, actor: str = "system",
    ) -> Appeal:
        return await self.run(
            self.store.create_appeal, party_kind, party_key, text=text, evidence=evidence,
            suspension_id=suspension_id, actor=actor)

    async def decide_appeal(
        self, appeal_id: int, *, approved: bool, reviewer: str, decision: str,
    ) -> Appeal:
        return await self.run(
            self.store.decide_appeal, appeal_id, approved=approved, reviewer=reviewer,
            decision=decision)

    async def get_appeal(self, appeal_id: int) -> Appeal:
        return await self.run(self.store.get_appeal, appeal_id)

    async def list_appeals(
        self, *, state: AppealState | str | None = None, party_key: str | None = None,
    ) -> list[Appeal]:
        return await self.run(self.store.list_appeals, state=state, party_key=party_key)

    async def add_complaint(
        self, caller_id: str, *, category: str, source: str, reporter: str | None = None,
        kind: str = "complaint", note: str = "", tenant_id: str | None = None,
        at: datetime | None = None, actor: str = "system", account_id: str | None = None,
        received_at: datetime | None = None, due_at: datetime | None = None,
        calendar_unknown: bool = False,
    ) -> Complaint:
        return await self.run(
            self.store.add_complaint, caller_id, category=category, source=source,
            reporter=reporter, kind=kind, note=note, tenant_id=tenant_id, at=at, actor=actor,
            account_id=account_id, received_at=received_at, due_at=due_at,
            calendar_unknown=calendar_unknown)

    async def reschedule_complaint(self, complaint_id: int, *, due_at: datetime,
                                   calendar_unknown: bool,
                                   actor: str = "system") -> Complaint | None:
        return await self.run(self.store.reschedule_complaint, complaint_id, due_at=due_at,
                              calendar_unknown=calendar_unknown, actor=actor)

    async def get_complaint(self, complaint_id: int) -> Complaint:
        return await self.run(self.store.get_complaint, complaint_id)

    async def open_complaints_due(self, before: datetime | None = None) -> list[Complaint]:
        return await self.run(self.store.open_complaints_due, before)

    async def close_complaint(self, complaint_id: int, *, resolution: str, actor: str,
                              at: datetime | None = None) -> Complaint:
        return await self.run(self.store.close_complaint, complaint_id, resolution=resolution,
                              actor=actor, at=at)

    async def mark_complaint_alerted(self, complaint_id: int, stage: str,
                                     previous: str | None) -> bool:
        return await self.run(self.store.mark_complaint_alerted, complaint_id, stage, previous)

    async def list_complaints(
        self, *, caller_id: str | None = None, since: datetime | None = None,
    ) -> list[Complaint]:
        return await self.run(self.store.list_complaints, caller_id=caller_id, since=since)

    async def complaints_after(
        self, after_id: int, *, since: datetime | None = None, upto_id: int | None = None,
        limit: int = 1000,
    ) -> list[Complaint]:
        return await self.run(
            self.store.complaints_after, after_id, since=since, upto_id=upto_id, limit=limit)

    async def max_complaint_id(self) -> int:
        return await self.run(self.store.max_complaint_id)

    async def open_health_task(
        self, caller_id: str, *, reason: str, figures: dict[str, Any], cap_factor: float,
        actor: str, tenant_id: str | None = None, at: datetime | None = None,
    ) -> HealthTask:
        return await self.run(
            self.store.open_health_task, caller_id, reason=reason, figures=figures,
            cap_factor=cap_factor, actor=actor, tenant_id=tenant_id, at=at)

    async def note_health_task(self, task_id: int, *, text: str, actor: str) -> HealthTask:
        return await self.run(self.store.note_health_task, task_id, text=text, actor=actor)

    async def close_health_task(self, task_id: int, *, resolution: str, actor: str,
                                at: datetime | None = None) -> HealthTask:
        return await self.run(self.store.close_health_task, task_id, resolution=resolution,
                              actor=actor, at=at)

    async def get_health_task(self, task_id: int) -> HealthTask:
        return await self.run(self.store.get_health_task, task_id)

    async def list_health_tasks(self, *, state: str | None = None,
                                caller_id: str | None = None) -> list[HealthTask]:
        return await self.run(self.store.list_health_tasks, state=state, caller_id=caller_id)

    async def add_rule_hits(self, counts: dict[tuple[str, str], int]) -> None:
        return await self.run(self.store.add_rule_hits, counts)

    async def load_rule_hits(self) -> dict[tuple[str, str], int]:
        return await self.run(self.store.load_rule_hits)

    async def add_audit(
        self, actor: str, action: str, *, party_kind: str | None = None,
        party_key: str | None = None, before: Any = None, after: Any = None,
    ) -> int:
        return await self.run(
            self.store.add_audit, actor, action, party_kind=party_kind, party_key=party_key,
            before=before, after=after)

    async def list_audit(
        self, *, since: datetime | None = None, party_key: str | None = None,
        limit: int = 1000, before_id: int | None = None, newest_first: bool = False,
        actor: str | None = None, action: str | None = None,
    ) -> list[AuditRecord]:
        return await self.run(
            self.store.list_audit, since=since, party_key=party_key, limit=limit,
            before_id=before_id, newest_first=newest_first, actor=actor, action=action)

    async def open_calls(self) -> list[LoggedCall]:
        return await self.run(self.store.open_calls)

    async def record_consent(self, item: ConsentInput, *, region: str = "CN",
                             actor: str = "system") -> tuple[ConsentEvent, list[str]]:
        return await self.run(self.store.record_consent, item, region=region, actor=actor)

    async def import_consents(self, items: Sequence[ConsentInput], *,
                              actor: str = "system") -> list[int]:
        return await self.run(self.store.import_consents, items, actor=actor)

    async def add_reassigned(self, list_name: str, rows: Sequence[tuple[str, float]], *,
                             actor: str = "system") -> int:
        return await self.run(self.store.add_reassigned, list_name, rows, actor=actor)

    async def consent_history(self, e164: str) -> list[ConsentEvent]:
        return await self.run(self.store.consent_history, e164)

    async def get_call(self, decision_id: str) -> LoggedCall:
        return await self.run(self.store.get_call, decision_id)

    async def load_store_data(self, now: datetime) -> StoreData:
        return await self.run(self.store.load_store_data, now)

    async def import_list(self, list_name: str, path: str | Path, **options: Any
                          ) -> ImportResult:
        return await self.run(self.store.import_list, list_name, path, **options)

    async def export_list(self, list_name: str, out: TextIO, fmt: str = "csv") -> int:
        return await self.run(self.store.export_list, list_name, out, fmt)

    async def export_calls(
        self, out: TextIO, fmt: str = "csv", *, since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        return await self.run(self.store.export_calls, out, fmt, since=since, until=until)

    async def export_audit(
        self, out: TextIO, fmt: str = "csv", *, since: datetime | None = None,
    ) -> int:
        return await self.run(self.store.export_audit, out, fmt, since=since)

    # -- the hot path: enqueue only ---------------------------------------------------

    def record_decision(self, call: CallRecord, *, redo: bool = False) -> None:
        self.store.record_decision(call, redo=redo)

    def record_outcome(self, decision_id: str, *, answered_at: float | None,
                       ended_at: float | None, duration: float | None,
                       cause: int | None, note: str | None = None) -> None:
        self.store.record_outcome(decision_id, answered_at=answered_at, ended_at=ended_at,
                                  duration=duration, cause=cause, note=note)

    async def flush_async(self) -> int:
        """Return once every row enqueued so far is committed."""
        future = getattr(self.store, "flush_future", None)
        if future is not None:
            return int(await asyncio.wrap_future(future()))
        return await self.run(self.store.flush)

    # -- snapshot and counters --------------------------------------------------------

    async def build_snapshot(self, now: datetime, build: Callable[[StoreData], T]) -> T:
        """Load the store data and run ``build`` on it, both off the loop."""
        return await self.run(lambda: build(self.store.load_store_data(now)))

    async def replay_counters(self, counters: InMemoryCounters, since: float) -> int:
        """Replay allowed calls since ``since`` into ``counters.rebuild`` off the loop.

        Only before the counters are in use: InMemoryCounters is not thread-safe.
        """
        return int(await self.run(
            lambda: counters.rebuild(self.store.iter_counter_rows_since(since))
        ))

    async def decided_since(self, since: float,
                            limit: int) -> list[tuple[str, str, str]]:
        """The last ``limit`` decisions logged since ``since`` (spooled ones included), as
        (pbx, channel id, decision id), oldest first; those without a channel left out."""

        def read() -> list[tuple[str, str, str]]:
            rows: deque[tuple[str, str, str]] = deque(maxlen=limit)
            for logged in self.store.iter_calls_since(since, allowed_only=False):
                c = logged.call
                if c.channel_id:
                    rows.append((c.pbx, c.channel_id, c.decision_id))
            return list(rows)

        return await self.run(read)

    # -- change notification ----------------------------------------------------------

    def subscribe(self, callback: Callable[[int], object]) -> Callable[[], None]:
        """Call ``callback(version)`` on this loop after each change to the data."""
        loop = asyncio.get_running_loop()

        def deliver(version: int) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(callback, version)

        unsubscribe = self.store.subscribe(deliver)
        self._unsubscribes.append(unsubscribe)
        return unsubscribe

    def start_polling(self, interval_s: float = 2.0) -> asyncio.Task[None]:
        """Poll for changes made by other processes; subscribers hear about them."""
        task = asyncio.get_running_loop().create_task(self._poll(interval_s))
        self._pollers.append(task)
        return task

    async def _poll(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.run(self.store.check_external_changes)
            except Exception as exc:  # keep polling; the store may come back
                logger.warning("store change poll failed: %s", exc)

    async def aclose(self) -> None:
        """Stop polling, let the store calls already running finish, then close the store
        and the executor.

        A request cancelled at shutdown leaves its store call running in an executor
        thread; closing the store under it (from another thread) crashed the process in
        SQLite. So the executor is drained first, and the store is closed after.
        """
        await cancel_and_wait(self._pollers)
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        if self._own_executor:
            await asyncio.to_thread(self._executor.shutdown, wait=True)
            await asyncio.to_thread(self.store.close)
        else:  # a shared executor runs others' work too: queue the close behind ours
            await self.run(self.store.close)
