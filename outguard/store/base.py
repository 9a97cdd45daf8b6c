"""The storage interface the service codes against, and the records it exchanges.

``Store`` is a ``typing.Protocol``: ``SQLiteStore`` implements it today; a shared server
backend for several PBXes can implement it later without touching callers. ``AsyncStore``
(``outguard.store.aio``) wraps any ``Store`` for the event loop.

Times in records are timezone-aware ``datetime`` in UTC, except the call log, whose
``at``/``answered_at``/``ended_at`` are float epoch seconds (it is written per call).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, Protocol, TextIO

if TYPE_CHECKING:
    from outguard.store.consent import ConsentEvent, ConsentInput

from outguard.callevents import FAIL_OPEN, FAILED, CallDecided
from rules.model import CallAttempt, ListInfo, ListKind, PartyKind, Scope, StoreData, Verdict

#: the calls that were dialled (``outguard.callevents.went_out`` in SQL): allowed, or failed
#: and let through by the fail-open policy
WENT_OUT_SQL = f"(verdict = 'allow' OR (verdict = '{FAILED}' AND rule = '{FAIL_OPEN}'))"

if TYPE_CHECKING:
    from outguard.store.health import HealthTask

Role = Literal["admin", "reviewer", "readonly"]
ROLES: tuple[str, ...] = ("admin", "reviewer", "readonly")
ACCOUNT_KINDS: tuple[str, ...] = ("agent", "campaign", "trunk")
MATCH_KINDS: tuple[str, ...] = ("endpoint", "channel_prefix", "callerid")
VERIFICATIONS: tuple[str, ...] = ("verified", "pending", "missing", "rejected")
COMPLAINT_CATEGORIES: tuple[str, ...] = ("harassment", "fraud", "advertising", "other")


class AppealState(str, enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


def to_ts(value: datetime | None) -> float | None:
    """A datetime as epoch seconds (naive datetimes are taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


class Where:
    """The WHERE clause of a listing, one term per filter given: ``add(term, value, ...)``
    adds ``term`` (its ``?`` bound to the values) unless the first value is None (that
    filter was not asked for)."""

    def __init__(self) -> None:
        self.terms: list[str] = ["true"]
        self.params: list[Any] = []

    def add(self, term: str, *values: Any) -> Where:
        if values and values[0] is not None:
            self.terms.append(term)
            self.params.extend(values)
        return self

    def sql(self) -> str:
        return " AND ".join(self.terms)


def to_dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, timezone.utc)


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    state: str = "active"  # active | disabled
    settings: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    tenant_id: str
    kind: str = "agent"  # agent | campaign | trunk
    name: str = ""
    state: str = "active"  # active | disabled
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccountMapping:
    """How a channel maps to an account when OUTGUARD_ACCOUNT is absent."""

    id: int
    match_kind: str  # endpoint | channel_prefix | callerid
    pattern: str
    account_id: str
    priority: int = 0  # higher wins when several match


@dataclass(frozen=True, slots=True)
class CallerId:
    e164: str
    tenant_id: str
    type: str = "unknown"  # mobile | fixed | ... (model.LineType values)
    verification: str = "missing"  # verified | pending | missing | rejected
    verified_until: datetime | None = None
    state: str = "active"  # active | disabled
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: str  # admin | reviewer | readonly
    disabled: bool = False
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewToken:
    """A freshly created API token; ``token`` is shown once and never stored."""

    id: str
    token: str
    user: User


@dataclass(frozen=True, slots=True)
class ListRecord:
    id: int
    info: ListInfo
    description: str = ""
    created_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.info.name


@dataclass(frozen=True, slots=True)
class Entry:
    list_name: str
    e164: str
    expires_at: datetime | None = None
    created_at: datetime | None = None
    source: str | None = None  # manual | import name | complaint | register
    reason: str | None = None
    evidence: str | None = None  # consent lists: where the consent is recorded
    #: reassigned lists: when the number was permanently disconnected (consent given
    #: before it is void)
    disconnected_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Suspension:
    id: int
    party_kind: PartyKind
    party_key: str
    reason: str
    trigger: str  # rule/threshold that fired, "" when a person suspended
    started_at: datetime
    ends_at: datetime | None  # None = permanent (disable)
    created_by: str
    lifted_by: str | None = None
    lift_reason: str | None = None
    lifted_at: datetime | None = None

    def active_at(self, now: datetime) -> bool:
        if self.lifted_at is not None and self.lifted_at <= now:
            return False
        return self.started_at <= now and (self.ends_at is None or self.ends_at > now)


@dataclass(frozen=True, slots=True)
class Appeal:
    id: int
    party_kind: PartyKind
    party_key: str
    suspension_id: int | None
    text: str
    evidence: str
    state: AppealState
    reviewer: str | None
    decision: str | None
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class Complaint:
    id: int
    kind: str  # complaint | mark (a callee's harassment mark)
    caller_id: str
    reporter: str | None
    category: str  # harassment | fraud | advertising | other
    source: str  # e.g. "12321", "ivr_opt_out", "app_mark"
    at: datetime
    note: str = ""
    tenant_id: str | None = None
    account_id: str | None = None  # the account it was attributed to (None: not known)
    # regulators' channels (outguard.enforcement.deadlines): receipt, deadline, handling
    received_at: datetime | None = None
    due_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    resolution: str | None = None
    alerted: str | None = None  # the last deadline alert announced: due_soon | overdue
    #: the deadline was counted Monday-Friday on a year its holiday calendar did not know
    calendar_unknown: bool = False


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str  # a user name, or "trigger:<name>" / "system"
    action: str  # e.g. "suspension.create", "list.import"
    party_kind: str | None
    party_key: str | None
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One screening decision as the call log keeps it (at = epoch seconds)."""

    decision_id: str
    channel_id: str
    adapter: str  # ari | agi
    tenant: str
    account: str
    caller_id: str
    destination: str  # E.164
    #: allow | block | failed (screening failed: ``rule`` is the failure policy applied,
    #: fail-open or fail-closed, and ``reason`` why it failed)
    verdict: str
    rule: str
    reason: str
    shadow: tuple[str, ...]
    decision_us: int
    at: float
    purpose: str = ""  # the attempt's purpose (policy replay needs it); "" in old rows
    campaign: str = ""
    #: the PBX the call came from ("" for calls not from a PBX: API checks, older rows)
    pbx: str = ""

    @classmethod
    def from_verdict(
        cls, attempt: CallAttempt, verdict: Verdict, *, adapter: str, decision_us: int
    ) -> CallRecord:
        return cls(
            decision_id=attempt.call_id,
            channel_id=attempt.channel_id,
            adapter=adapter,
            tenant=attempt.tenant,
            account=attempt.account,
            caller_id=verdict.caller_id_e164 or attempt.caller_id,
            destination=verdict.destination_e164 or attempt.destination,
            verdict="allow" if verdict.allowed else "block",
            rule=verdict.rule_id,
            reason=verdict.reason,
            shadow=verdict.shadow,
            decision_us=decision_us,
            at=attempt.at.timestamp(),
            purpose=attempt.purpose.value,
            campaign=attempt.campaign or "",
        )

    @classmethod
    def from_decided(cls, event: CallDecided) -> CallRecord:
        return cls(
            decision_id=event.call_id, channel_id=event.channel_id, adapter=event.adapter,
            tenant=event.tenant, account=event.account, caller_id=event.caller_id,
            destination=event.destination, verdict=event.verdict,
            rule=event.rule, reason=event.reason, shadow=event.shadow,
            decision_us=event.decision_us, at=event.at, purpose=event.purpose,
            campaign=event.campaign, pbx=event.pbx,
        )

    def as_row(self) -> tuple[Any, ...]:
        """The row for ``writer.INSERT_CALL`` (and the spool), pbx last."""
        return (
            self.decision_id, self.channel_id, self.adapter, self.tenant, self.account,
            self.caller_id, self.destination, self.verdict, self.rule, self.reason,
            ",".join(self.shadow), self.decision_us, self.at, self.purpose or None,
            self.campaign or None, self.pbx,
        )


@dataclass(frozen=True, slots=True)
class LoggedCall:
    """A call-log row with its outcome (None until the call ended)."""

    call: CallRecord
    answered_at: float | None = None
    ended_at: float | None = None
    duration: float | None = None
    cause: int | None = None
    #: how the outcome was known when no hangup was seen ("unknown after restart", ...)
    end_note: str | None = None


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Reported to an import's progress callback every ``progress_every`` lines."""

    phase: str  # reading | merging | done
    lines: int
    bytes_read: int
    total_bytes: int | None
    accepted: int
    rejected: int


@dataclass(frozen=True, slots=True)
class ImportResult:
    list_name: str
    mode: str  # replace | add
    lines: int
    accepted: int  # distinct valid numbers in the file
    duplicates: int  # repeated in the file, or (add mode) already on the list
    rejected: int
    rejects: tuple[Any, ...]  # errors.Reject, the first ``max_rejects_kept``
    added: int
    removed: int
    total: int  # entries on the list afterwards
    seconds: float
    data_version: int


ChangeCallback = Callable[[int], None]


class Store(Protocol):
    """What the service, CLI and adapters may ask of a store (sync; see AsyncStore)."""

    def close(self) -> None: ...
    def data_version(self) -> int: ...
    def subscribe(self, callback: ChangeCallback) -> Callable[[], None]: ...
    def check_external_changes(self) -> bool: ...

    # parties
    def create_tenant(self, id: str, name: str, *, settings: dict[str, Any] | None = None, actor: str = "system") -> Tenant: ...
    def get_tenant(self, id: str) -> Tenant: ...
    def list_tenants(self) -> list[Tenant]: ...
    def set_tenant_state(self, id: str, state: str, *, actor: str = "system") -> Tenant: ...
    def create_account(self, id: str, tenant_id: str, *, kind: str = "agent", name: str = "", actor: str = "system") -> Account: ...
    def get_account(self, id: str) -> Account: ...
    def list_accounts(self, tenant_id: str | None = None) -> list[Account]: ...
    def set_account_state(self, id: str, state: str, *, actor: str = "system") -> Account: ...
    def add_account_mapping(self, match_kind: str, pattern: str, account_id: str, *, priority: int = 0, actor: str = "system") -> AccountMapping: ...
    def remove_account_mapping(self, mapping_id: int, *, actor: str = "system") -> None: ...
    def list_account_mappings(self) -> list[AccountMapping]: ...
    def resolve_account(self, *, endpoint: str = "", channel: str = "", callerid: str = "") -> str | None: ...
    def upsert_caller_id(self, e164: str, tenant_id: str, *, type: str = "unknown", verification: str = "missing", verified_until: datetime | None = None, state: str = "active", actor: str = "system") -> CallerId: ...
    def get_caller_id(self, e164: str) -> CallerId: ...
    def list_caller_ids(self, tenant_id: str | None = None) -> list[CallerId]: ...
    def create_user(self, name: str, role: str, *, actor: str = "system") -> User: ...
    def get_user(self, name: str) -> User: ...
    def list_users(self) -> list[User]: ...
    def set_user_disabled(self, name: str, disabled: bool, *, actor: str = "system") -> User: ...
    def create_token(self, user_name: str, *, label: str = "", actor: str = "system") -> NewToken: ...
    def revoke_token(self, token_id: str, *, actor: str = "system") -> None: ...
    def verify_token(self, token: str) -> User: ...

    # lists
    def create_list(self, name: str, kind: ListKind | str, *, scope: Scope | str = Scope.GLOBAL, scope_key: str | None = None, description: str = "", actor: str = "system") -> ListRecord: ...
    def get_list(self, name: str) -> ListRecord: ...
    def list_lists(self) -> list[ListRecord]: ...
    def delete_list(self, name: str, *, actor: str = "system") -> None: ...
    def add_entries(self, list_name: str, numbers: Sequence[str], *, expires_at: datetime | None = None, source: str = "manual", reason: str | None = None, evidence: str | None = None, actor: str = "system") -> int: ...
    def remove_entries(self, list_name: str, numbers: Sequence[str], *, actor: str = "system") -> int: ...
    def find_entries(self, e164: str) -> list[Entry]: ...
    def iter_entries(self, list_name: str) -> Iterator[Entry]: ...
    def page_entries(self, list_name: str, *, q: str = "", offset: int = 0, limit: int = 100, descending: bool = False) -> tuple[list[Entry], bool]: ...
    def count_entries(self, list_name: str) -> int: ...
    def purge_expired(self, now: datetime) -> int: ...

    # enforcement
    def create_suspension(self, party_kind: PartyKind | str, party_key: str, *, reason: str, created_by: str, trigger: str = "", started_at: datetime | None = None, ends_at: datetime | None = None) -> Suspension: ...
    def lift_suspension(self, suspension_id: int, *, lifted_by: str, lift_reason: str, lifted_at: datetime | None = None) -> Suspension: ...
    def get_suspension(self, suspension_id: int) -> Suspension: ...
    def list_suspensions(self, *, party_kind: PartyKind | str | None = None, party_key: str | None = None, active_at: datetime | None = None) -> list[Suspension]: ...
    def create_appeal(self, party_kind: PartyKind | str, party_key: str, *, text: str, evidence: str = "", suspension_id: int | None = None, actor: str = "system") -> Appeal: ...
    def decide_appeal(self, appeal_id: int, *, approved: bool, reviewer: str, decision: str) -> Appeal: ...
    def get_appeal(self, appeal_id: int) -> Appeal: ...
    def list_appeals(self, *, state: AppealState | str | None = None, party_key: str | None = None) -> list[Appeal]: ...
    def add_complaint(self, caller_id: str, *, category: str, source: str, reporter: str | None = None, kind: str = "complaint", note: str = "", tenant_id: str | None = None, at: datetime | None = None, actor: str = "system", account_id: str | None = None, received_at: datetime | None = None, due_at: datetime | None = None, calendar_unknown: bool = False) -> Complaint: ...
    def get_complaint(self, complaint_id: int) -> Complaint: ...
    def open_complaints_due(self, before: datetime | None = None) -> list[Complaint]: ...
    def close_complaint(self, complaint_id: int, *, resolution: str, actor: str, at: datetime | None = None) -> Complaint: ...
    def mark_complaint_alerted(self, complaint_id: int, stage: str, previous: str | None) -> bool: ...
    def reschedule_complaint(self, complaint_id: int, *, due_at: datetime, calendar_unknown: bool, actor: str = "system") -> Complaint | None: ...
    def list_complaints(self, *, caller_id: str | None = None, since: datetime | None = None) -> list[Complaint]: ...
    def complaints_after(self, after_id: int, *, since: datetime | None = None, upto_id: int | None = None, limit: int = 1000) -> list[Complaint]: ...
    def max_complaint_id(self) -> int: ...
    def add_rule_hits(self, counts: dict[tuple[str, str], int]) -> None: ...
    def load_rule_hits(self) -> dict[tuple[str, str], int]: ...
    def claim_pbx(self, pbx: str, entity_id: str, instance: str, kind: str, now: float, stale_before: float) -> tuple[str, str, str, float] | None: ...
    def pbx_claim(self, pbx: str) -> tuple[str, str, str, float] | None: ...
    def add_audit(self, actor: str, action: str, *, party_kind: str | None = None, party_key: str | None = None, before: Any = None, after: Any = None) -> int: ...
    def list_audit(self, *, since: datetime | None = None, party_key: str | None = None, limit: int = 1000, before_id: int | None = None, newest_first: bool = False, actor: str | None = None, action: str | None = None) -> list[AuditRecord]: ...

    # consent ledger (outguard/store/consent.py)
    def record_consent(self, item: ConsentInput, *, region: str = "CN", actor: str = "system") -> tuple[ConsentEvent, list[str]]: ...
    def import_consents(self, items: Sequence[ConsentInput], *, actor: str = "system") -> list[int]: ...
    def add_reassigned(self, list_name: str, rows: Sequence[tuple[str, float]], *, source: str = "rnd", actor: str = "system") -> int: ...
    def consent_history(self, e164: str) -> list[ConsentEvent]: ...

    # caller-ID health tasks (outguard.store.health)
    def open_health_task(self, caller_id: str, *, reason: str, figures: dict[str, Any], cap_factor: float, actor: str, tenant_id: str | None = None, at: datetime | None = None) -> HealthTask: ...
    def note_health_task(self, task_id: int, *, text: str, actor: str) -> HealthTask: ...
    def close_health_task(self, task_id: int, *, resolution: str, actor: str, at: datetime | None = None) -> HealthTask: ...
    def get_health_task(self, task_id: int) -> HealthTask: ...
    def list_health_tasks(self, *, state: str | None = None, caller_id: str | None = None) -> list[HealthTask]: ...

    # call log
    def record_decision(self, call: CallRecord, *, redo: bool = False) -> None: ...
    def record_outcome(self, decision_id: str, *, answered_at: float | None, ended_at: float | None, duration: float | None, cause: int | None, note: str | None = None) -> None: ...
    def flush(self, timeout: float | None = None) -> int: ...
    def iter_calls_since(self, ts: float, *, allowed_only: bool = True, ended_since: float | None = None) -> Iterator[LoggedCall]: ...
    def open_calls(self) -> list[LoggedCall]: ...
    def iter_counter_rows_since(self, ts: float) -> Iterator[tuple[str, str, str, str, float]]: ...
    def iter_allowed_calls_since(self, ts: float) -> Iterator[tuple[str, str, str, str, str, float]]: ...
    def iter_calls(self, since: float | None = None, until: float | None = None) -> Iterator[LoggedCall]: ...
    def get_call(self, decision_id: str) -> LoggedCall: ...

    # snapshot source
    def load_store_data(self, now: datetime) -> StoreData: ...

    # bulk
    def import_list(self, list_name: str, path: Any, **options: Any) -> ImportResult: ...
    def export_list(self, list_name: str, out: TextIO, fmt: str = "csv") -> int: ...
    def export_calls(self, out: TextIO, fmt: str = "csv", *, since: datetime | None = None, until: datetime | None = None) -> int: ...
    def export_audit(self, out: TextIO, fmt: str = "csv", *, since: datetime | None = None) -> int: ...


Normaliser = Callable[[str, str], str]


def default_normaliser() -> Normaliser:
    """``rules.numbers.normalise`` (imported late: the store loads without it)."""
    from rules.numbers import normalise

    return normalise


#: a normaliser's form for a chunk of whole lines of bare numbers (one item per line: the
#: number, or None where the normaliser must be asked for the line's error), or None
#: when the chunk holds anything else; see ``rules.numbers.normalise_plain_lines``
PlainLines = Callable[[bytes, str], "list[str | None] | None"]


def plain_lines(normalise: Normaliser) -> PlainLines | None:
    """The chunk form of ``normalise`` when it is the default one (``rules.numbers``),
    else None: another normaliser sees every line."""
    try:
        from rules.numbers import normalise as default
        from rules.numbers import normalise_plain_lines
    except ImportError:
        return None
    return normalise_plain_lines if normalise is default else None


def number_error_types() -> tuple[type[Exception], ...]:
    """The exceptions a normaliser raises for a bad number (NumberError is a ValueError)."""
    try:
        from rules.numbers import NumberError
    except ImportError:
        return (ValueError,)
    return (NumberError, ValueError)


def match_account(
    mappings: Sequence[AccountMapping], *, endpoint: str = "", channel: str = "", callerid: str = ""
) -> str | None:
    """The account a channel maps to, or None: highest priority first, then endpoint,
    channel prefix (longest first), caller ID. Pure; the adapters call it on the snapshot's
    ``extra["account_map"]``."""
    best: tuple[int, int, int, str] | None = None
    order = {"endpoint": 2, "channel_prefix": 1, "callerid": 0}
    for m in mappings:
        if m.match_kind == "endpoint":
            hit = bool(endpoint) and endpoint == m.pattern
        elif m.match_kind == "channel_prefix":
            hit = bool(channel) and channel.startswith(m.pattern)
        else:
            hit = bool(callerid) and callerid == m.pattern
        if hit:
            key = (m.priority, order.get(m.match_kind, 0), len(m.pattern), m.account_id)
            if best is None or key > best:
                best = key
    return None if best is None else best[3]
