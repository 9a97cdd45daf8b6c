"""Complaints (投诉, e.g. via 12321) and callee harassment marks (标记) coming in.

A complaint is stored (audited) with the tenant and account it is attributed to
(``outguard.figures.attribute_complaint``), counted for the caller ID, that tenant and that
account, and puts the callee on the tenant's complaint list ``complaints-<tenant>`` at once (a tenant-scoped list of kind
"complaint", created on demand). A ``lists`` rule without ``lists =`` checks every
blocking list, these included; one naming lists must name ``complaints-<tenant>`` itself.
A mark is stored and counted per distinct reporter (callee) for the caller ID.

A complaint from a regulator's channel carries its response deadline
(``outguard.enforcement.deadlines``); ``check_deadlines`` (run every ``deadline_poll_s`` by
the service) announces each that becomes due soon or overdue, once; ``close_complaint``
records how it was handled (audited).

The figures count what is in the store, by id watermark: a complaint added here, by the
CLI in another process or by a CSV import reaches the running service's figures and
triggers the same way, within ``poll_s``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

from outguard import views
from outguard.enforcement.base import EnforcerBase
from outguard.enforcement.complaints import ComplaintRow, category_of, read_rows
from outguard.enforcement.deadlines import DUE_SOON_S, calendar_warnings, deadline_state
from outguard.enforcement.records import ComplaintImport, complaint_dict
from outguard.errors import InvalidInput, NotFound, OutguardError
from outguard.store.base import Complaint
from rules.model import ListKind, PartyKind, Scope

logger = logging.getLogger(__name__)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)

MAX_REJECTS = 100


def complaint_list_name(tenant: str) -> str:
    """The tenant's do-not-call list fed by complaints."""
    return f"complaints-{tenant}"


class IntakeMixin(EnforcerBase):
    async def add_complaint(self, callee: str, caller_id: str, *, category: str, source: str,
                            tenant: str | None = None, actor: str, account: str | None = None,
                            note: str = "", at: datetime | None = None,
                            received: datetime | None = None) -> Complaint:
        """Record a complaint. The callee goes on ``complaints-<tenant>`` at once; the
        tenant defaults to the tenant of the last call from the caller ID to the callee,
        else the caller ID's owner. Triggers are re-evaluated in the background. A
        complaint from a regulator's channel (``source`` 12321, 12300, fcc, ofcom) gets its
        response deadline, counted from ``received`` (when the company received it;
        default now)."""
        return await self._intake_one("complaint", callee, caller_id, category=category,
                                      source=source, tenant=tenant, account=account,
                                      note=note, at=at, actor=actor, received=received)

    async def add_mark(self, callee: str, caller_id: str, *, category: str = "harassment",
                       source: str = "app_mark", tenant: str | None = None, actor: str,
                       note: str = "", at: datetime | None = None) -> Complaint:
        """Record a callee's harassment mark on a caller ID; ``callee`` is the reporter
        (marks count per distinct reporter within a trigger's window)."""
        return await self._intake_one("mark", callee, caller_id, category=category,
                                      source=source, tenant=tenant, account=None, note=note,
                                      at=at, actor=actor)

    async def import_complaints(self, path: str | Path, *, actor: str,
                                kind: str = "complaint") -> ComplaintImport:
        """Read a CSV (header ``callee,caller_id,category,source[,tenant,account,at,note]``)
        and add each row as a complaint (or, with ``kind="mark"``, a mark). Bad rows are
        reported with their line, good rows kept. InvalidInput for a bad header."""
        if kind not in ("complaint", "mark"):
            raise InvalidInput("kind must be complaint or mark", field="kind", value=kind)
        try:
            rows = await asyncio.to_thread(lambda: list(read_rows(path)))
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc}", field="path") from exc
        added, rejected = 0, 0
        rejects: list[tuple[int, str]] = []
        for row in rows:
            if isinstance(row, ComplaintRow):
                try:
                    await self._intake_one(kind, row.callee, row.caller_id,
                                           category=row.category, source=row.source,
                                           tenant=row.tenant, account=row.account,
                                           note=row.note, at=row.at, actor=actor)
                    added += 1
                    continue
                except InvalidInput as exc:
                    row = (row.line, exc.message)
            rejected += 1
            if len(rejects) < MAX_REJECTS:
                rejects.append(row)
        logger.info("imported %d %ss from %s (%d rejected)", added, kind, path, rejected)
        return ComplaintImport(str(path), len(rows), added, rejected, tuple(rejects))

    async def _intake_one(self, kind: str, callee: str, caller_id: str, *, category: str,
                          source: str, tenant: str | None, account: str | None, note: str,
                          at: datetime | None, actor: str,
                          received: datetime | None = None) -> Complaint:
        callee_e164 = self._number(callee, "callee")
        caller = self._number(caller_id, "caller_id")
        category = category_of(category)
        if not source.strip():
            raise InvalidInput("a complaint needs its source (e.g. 12321, ivr_opt_out)",
                               field="source")
        when = at.timestamp() if at is not None else self.clock()
        deadlines = self.config.deadlines
        channel = deadlines.channel_of(source) if kind == "complaint" else None
        received_ts = received.timestamp() if received is not None else max(when, self.clock())
        if received is not None and received_ts < when:
            raise InvalidInput("a complaint cannot be received before it was made",
                               field="received")
        deadline = deadlines.due_at(channel, received_ts) if channel is not None else None
        if deadline is not None and deadline.calendar_unknown:
            logger.warning("complaint via %s received %s: its deadline runs into a year the "
                           "%s calendar does not know; counted Monday-Friday "
                           "(calendar_unknown)", source, _dt(received_ts).date(),
                           channel.calendar if channel else "")
        tenant, account = self._attribute(caller, callee_e164, tenant,
                                          account if kind == "complaint" else None)
        if tenant is None:
            tenant = await self._owner(caller)
        record: Complaint = await self.store.add_complaint(
            caller, category=category, source=source, reporter=callee_e164, kind=kind,
            note=note, tenant_id=tenant, account_id=account,
            at=datetime.fromtimestamp(when, UTC), actor=actor,
            received_at=_dt(received_ts) if channel is not None else None,
            due_at=_dt(deadline.due) if deadline is not None else None,
            calendar_unknown=deadline.calendar_unknown if deadline is not None else False)
        # counted from the store, like a complaint any other process stored: once
        await self._pull_complaints()
        listed = None
        if kind == "complaint" and self.config.complaint_list and tenant:
            listed = await self._list_callee(tenant, callee_e164, category, source, actor)
        self._announce(f"{kind}.added", {**complaint_dict(record), "callee": callee_e164,
                                         "account": account, "listed_on": listed})
        return record

    # -- deadlines of complaints from regulators' channels ---------------------------------

    async def complaints_due(self, within_s: float | None = None) -> list[Complaint]:
        """Open complaints with a deadline, nearest first; with ``within_s``, only those
        due within that time from now (overdue ones included)."""
        before = None if within_s is None else _dt(self.clock() + within_s)
        found: list[Complaint] = await self.store.open_complaints_due(before)
        return found

    async def close_complaint(self, complaint_id: int, *, resolution: str,
                              actor: str) -> Complaint:
        """Record how a complaint was handled (who, when, what was done): audited and
        announced (``complaint.closed``). Conflict when already closed."""
        c: Complaint = await self.store.close_complaint(
            complaint_id, resolution=resolution, actor=actor, at=_dt(self.clock()))
        self._announce("complaint.closed", views.complaint(c, now=self.clock()))
        return c

    async def check_deadlines(self) -> list[tuple[str, Complaint]]:
        """Announce each open complaint that became due soon or overdue, once per stage
        and per cluster (the store records the stage; only the writer that moved it
        announces): ``complaint.due_soon``, ``complaint.overdue`` on the event hub and
        to the webhooks. Returns what was announced."""
        now = self.clock()
        await self.recount_unknown_deadlines()
        announced: list[tuple[str, Complaint]] = []
        for c in await self.store.open_complaints_due(_dt(now + DUE_SOON_S)):
            stage = deadline_state(c, now)
            if stage not in ("due_soon", "overdue") or c.alerted in (stage, "overdue"):
                continue
            if await self.store.mark_complaint_alerted(c.id, stage, c.alerted):
                self._announce(f"complaint.{stage}", views.complaint(c, now=now))
                announced.append((stage, c))
        return announced

    async def recount_unknown_deadlines(self) -> list[Complaint]:
        """Count again the open deadlines that were counted Monday-Friday on a year their
        calendar did not know (``calendar_unknown``), now that it may know it (a calendar
        file added to the policy): each one that changes is stored (audited,
        ``complaint.reschedule``) and announced (``complaint.rescheduled``)."""
        deadlines = self.config.deadlines
        changed: list[Complaint] = []
        for c in await self.store.open_complaints_due():
            channel = deadlines.channel_of(c.source)
            if not c.calendar_unknown or channel is None or c.received_at is None:
                continue
            again = deadlines.due_at(channel, c.received_at.timestamp())
            if again.calendar_unknown and c.due_at is not None \
                    and again.due == c.due_at.timestamp():
                continue
            new: Complaint | None = await self.store.reschedule_complaint(
                c.id, due_at=_dt(again.due), calendar_unknown=again.calendar_unknown)
            if new is None:  # another instance counted it again first
                continue
            self._announce("complaint.rescheduled", views.complaint(new, now=self.clock()))
            changed.append(new)
        return changed

    async def calendar_warnings(self) -> list[str]:
        """``deadlines.calendar_warnings`` for the policy in force and the open complaints
        in the store (for /health)."""
        unknown = sum(1 for c in await self.store.open_complaints_due() if c.calendar_unknown)
        return calendar_warnings(self.config.deadlines, self.policy, self.clock(), unknown)

    async def _deadline_loop(self) -> None:
        while True:
            try:
                await self.check_deadlines()
            except OutguardError as exc:
                logger.warning("complaint deadlines: %s", exc)
            await asyncio.sleep(self.deadline_poll_s)

    async def _owner(self, caller: str) -> str | None:
        try:
            owner: str = (await self.store.get_caller_id(caller)).tenant_id
            return owner
        except NotFound:
            return self.book.tenant_of(PartyKind.CALLER_ID, caller)

    async def _list_callee(self, tenant: str, callee: str, category: str, source: str,
                           actor: str) -> str | None:
        name = complaint_list_name(tenant)
        try:
            await self.store.get_list(name)
        except NotFound:
            try:
                await self.store.create_list(
                    name, ListKind.COMPLAINT, scope=Scope.TENANT, scope_key=tenant,
                    description=f"callees who complained about tenant {tenant}", actor=actor)
            except OutguardError as exc:  # created meanwhile by another writer
                logger.info("complaint list %s: %s", name, exc)
        await self.store.add_entries(name, [callee], source="complaint",
                                     reason=f"{category} complaint via {source}", actor=actor)
        return name
