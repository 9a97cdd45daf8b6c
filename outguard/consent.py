"""The consent ledger as people see it: one summary of a number (history, consents in
force, the lists it is on), shared by the CLI, the API and the dashboard."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from outguard import dialplan_vars as dv
from outguard.errors import NotFound, OutguardError
from outguard.store.aio import AsyncStore
from outguard.store.consent import ConsentInput
from outguard.store.sqlite import SQLiteStore

logger = logging.getLogger(__name__)


def grant_dict(g: Any) -> dict[str, Any]:
    return {
        "id": g.id, "number": g.e164, "list": g.list_name, "tenant": g.tenant,
        "campaign": g.campaign, "purpose": g.purpose.value if g.purpose else None,
        "given_at": g.given_at.isoformat(), "source": g.source, "evidence": g.evidence,
        "expires_at": g.expires_at.isoformat() if g.expires_at else None,
    }


def summary(store: SQLiteStore, e164: str, now: datetime) -> dict[str, Any]:
    """History (oldest first), the grants in force now, the grants a reassigned number's
    disconnect date voids (given before it: by the number's previous holder), and every
    list entry of the number."""
    history = [e.as_dict() for e in store.consent_history(e164)]
    entries = store.find_entries(e164)
    lists = []
    for entry in entries:
        expired = entry.expires_at is not None and entry.expires_at <= now
        lists.append({
            "list": entry.list_name, "source": entry.source, "reason": entry.reason,
            "evidence": entry.evidence, "expired": expired,
            "created_at": entry.created_at.isoformat() if entry.created_at else None,
            "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
            "disconnected_at": (entry.disconnected_at.isoformat()
                                if entry.disconnected_at else None),
        })
    disconnected = max((e.disconnected_at for e in entries if e.disconnected_at is not None),
                       default=None)
    in_force, void = [], []
    for grant in store.consents_in_force(e164, now):
        if disconnected is not None and grant.given_at < disconnected:
            void.append({**grant_dict(grant), "void": "reassigned",
                         "disconnected_at": disconnected.isoformat()})
        else:
            in_force.append(grant_dict(grant))
    return {"number": e164, "in_force": in_force, "void": void, "history": history,
            "lists": lists}


def _header(event: Mapping[str, Any], name: str) -> str:
    """One header's value; a repeated header (a list) gives its last value."""
    value = event.get(name)
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else ""
    return str(value or "").strip()


class DialplanOptOuts:
    """Records the dialplan's opt-out events (AMI ``UserEvent(OutguardOptOut, ...)``) as
    consent revocations, channel "dialplan". The write bumps the store's data_version, so
    the screener's next snapshot (rebuilt at once) refuses the next call.

    The tenant comes from the event, else from the call-log row of its DecisionId, else
    the service's default tenant. Events are recorded in order of arrival, off the loop.
    """

    def __init__(self, store: AsyncStore, region: Callable[[], str],
                 default_tenant: str | None = None) -> None:
        self.store = store
        self.region = region
        self.default_tenant = default_tenant
        self.recorded = 0
        self.failed = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    def __call__(self, event: Mapping[str, str]) -> None:
        fields = {h: _header(event, h) for h in dv.OPTOUT_HEADERS}
        task = asyncio.get_running_loop().create_task(self._record(fields))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tenant(self, fields: Mapping[str, str]) -> str | None:
        if fields["Tenant"]:
            return fields["Tenant"]
        if fields["DecisionId"]:
            try:
                call = await self.store.get_call(fields["DecisionId"])
                if call.call.tenant:
                    return str(call.call.tenant)
            except NotFound:
                pass
        return self.default_tenant

    async def _record(self, fields: Mapping[str, str]) -> None:
        async with self._lock:
            try:
                tenant = await self._tenant(fields)
                evidence = ", ".join(f"{k} {fields[k]}" for k in ("Channel", "DecisionId")
                                     if fields[k])
                item = ConsentInput(
                    number=fields["Number"], action="revoke", channel="dialplan",
                    source=fields["Source"] or "ivr", tenant=tenant,
                    campaign=fields["Campaign"] or None, purpose=fields["Purpose"] or None,
                    evidence=evidence)
                record, listed = await self.store.record_consent(
                    item, region=self.region(), actor="dialplan")
            except OutguardError as exc:
                self.failed += 1
                logger.warning("dialplan opt-out %r not recorded: %s", dict(fields), exc)
                return
            self.recorded += 1
            logger.info("dialplan opt-out: consent of %s revoked (#%d, tenant %s), listed on %s",
                        record.e164, record.id, tenant, ", ".join(listed) or "-")

    async def drain(self) -> None:
        """Wait for the events received so far to be recorded."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
