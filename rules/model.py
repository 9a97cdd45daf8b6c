"""The data that flows through a screening decision.

These types are the contract between the adapters (ARI, AGI), the store and the engine.
Everything here is immutable and free of I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class Purpose(str, enum.Enum):
    """Why a call is made; time windows and caps may differ per purpose."""

    MARKETING = "marketing"
    SERVICE = "service"
    COLLECTION = "collection"
    NOTIFICATION = "notification"


class LineType(str, enum.Enum):
    MOBILE = "mobile"
    FIXED = "fixed"
    FIXED_OR_MOBILE = "fixed_or_mobile"
    TOLL_FREE = "toll_free"  # 800
    SHARED_COST = "shared_cost"  # 400
    PREMIUM = "premium"
    VOIP = "voip"
    SHORT_CODE = "short_code"  # 95xxx, 96xxx, 10086, 110, ...
    UNKNOWN = "unknown"


class PartyKind(str, enum.Enum):
    TENANT = "tenant"
    ACCOUNT = "account"
    CALLER_ID = "caller_id"


class PartyState(str, enum.Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # temporary, has an end time
    DISABLED = "disabled"  # permanent until a person lifts it
    UNVERIFIED = "unverified"  # caller IDs: real-name verification missing or expired


class ListKind(str, enum.Enum):
    DO_NOT_CALL = "dnc"
    BLACKLIST = "blacklist"
    COMPLAINT = "complaint"
    REGISTER = "register"  # imported national register (e.g. US DNC)
    ALLOW = "allow"
    CONSENT = "consent"
    LITIGATOR = "litigator"  # known TCPA litigators: block whatever consent says
    REASSIGNED = "reassigned"  # FCC Reassigned Numbers Database results: disconnect dates


class Scope(str, enum.Enum):
    GLOBAL = "global"
    TENANT = "tenant"
    CAMPAIGN = "campaign"


class RuleMode(str, enum.Enum):
    ENFORCE = "enforce"
    SHADOW = "shadow"  # decide and record "would block", let the call through


@dataclass(frozen=True, slots=True)
class CallAttempt:
    """One outbound call, as the adapter saw it, before normalisation."""

    tenant: str
    account: str
    caller_id: str  # presented caller ID, raw
    destination: str  # dialed number, raw (any form numbers.normalise accepts)
    at: datetime  # timezone-aware
    purpose: Purpose = Purpose.MARKETING
    campaign: str | None = None
    channel_id: str = ""
    call_id: str = ""  # decision id assigned by the service (uuid4 hex)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer for one call attempt.

    ``allowed`` is what the adapter acts on. A rule in shadow mode that would have blocked
    is listed in ``shadow`` while ``allowed`` stays True.
    """

    allowed: bool
    rule_id: str  # the rule that decided ("" when every rule passed)
    reason: str  # reason code, e.g. "dnc_listed", "quiet_hours"; "ok" when allowed
    message: str  # a sentence a person can read
    cause: int = 16  # Q.850 cause to hang up with (21 -> SIP 403, 17 -> 486, 34 -> 503 ...)
    announcement: str | None = None  # sound name to play before hanging up
    shadow: tuple[str, ...] = ()  # rule ids that would have blocked in enforce mode
    destination_e164: str = ""
    caller_id_e164: str = ""


@dataclass(frozen=True, slots=True)
class Party:
    """A tenant, account or caller ID with its enforcement state, as the store knows it."""

    kind: PartyKind
    key: str  # tenant id, account id, or caller ID in E.164
    state: PartyState = PartyState.ACTIVE
    tenant: str | None = None  # owning tenant (accounts, caller IDs)
    until: datetime | None = None  # end of a suspension; None = no end
    reason: str = ""
    verified_until: datetime | None = None  # caller IDs: real-name verification expiry
    #: caller IDs: caps scoped to the caller ID are multiplied by this while a caller-ID
    #: health task is open (``throttle_task``); 1.0 = not throttled
    cap_factor: float = 1.0
    throttle_task: int | None = None


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One number on one named list (the store streams millions of these)."""

    list_name: str
    e164: str
    expires_at: datetime | None = None
    evidence: str | None = None  # consent lists: where the consent came from (kept for explain)
    given_at: datetime | None = None  # consent lists: when the entry was recorded
    disconnected_at: datetime | None = None  # reassigned lists: when the number was disconnected


@dataclass(frozen=True, slots=True)
class ConsentGrant:
    """One consent in force, from the consent ledger (revoked and expired ones are folded
    out by the store). It exempts the destination from the rules its consent list's
    ``exempts`` names, only for calls inside its scope: its tenant, and its campaign and
    purpose when it names them. A grant given before the number's disconnect date on a
    reassigned list is void (the number now belongs to someone else)."""

    id: int
    e164: str
    list_name: str  # the consent list whose ``exempts`` apply
    tenant: str
    given_at: datetime
    campaign: str | None = None  # None: every campaign of the tenant
    purpose: Purpose | None = None  # None: every purpose
    expires_at: datetime | None = None
    source: str = ""
    evidence: str = ""

    def covers(self, tenant: str, campaign: str | None, purpose: Purpose, now: datetime) -> bool:
        return (
            self.tenant == tenant
            and (self.campaign is None or self.campaign == campaign)
            and (self.purpose is None or self.purpose is purpose)
            and (self.expires_at is None or self.expires_at > now)
        )


@dataclass(frozen=True, slots=True)
class ListInfo:
    name: str
    kind: ListKind
    scope: Scope = Scope.GLOBAL
    scope_key: str | None = None  # tenant id or campaign id for scoped lists
    imported_at: datetime | None = None  # registers: time of the last import
    #: registers: when the imported copy was released by the registry (the import says
    #: so); a register's age runs from here, or from imported_at when it is not known
    released_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoreData:
    """Everything the engine needs from the store to build a snapshot.

    ``entries`` is an iterable so that the store can stream tens of millions of rows
    without materialising them.
    """

    parties: Iterable[Party] = ()
    lists: Iterable[ListInfo] = ()
    entries: Iterable[ListEntry] = ()
    extra: Mapping[str, object] = field(default_factory=dict)
    consents: Iterable[ConsentGrant] = ()  # the consent ledger's grants in force


class Counters(Protocol):
    """Read side of the rate counters the caps rule consults (no I/O, in memory)."""

    def attempts(self, scope: str, key: str, window_s: int, now: float) -> int:
        """Attempts by ``scope`` in ("account", "caller_id", "tenant") within the window."""

    def destination_attempts(self, tenant: str, e164: str, window_s: int, now: float) -> int:
        """Attempts to one destination across all accounts of a tenant within the window."""

    def distinct_callees(self, account: str, now: float) -> int:
        """Distinct destinations dialled by the account on the current day."""

    def concurrent(self, scope: str, key: str) -> int:
        """Calls in progress for ``scope`` in ("account", "tenant")."""


@dataclass(frozen=True, slots=True)
class NumberInfo:
    """What a normalised number tells about itself (``rules.classification.classify``).

    ``timezones`` lists every candidate zone (one for most countries, several for some
    NANP ranges); ``timezone`` is the single zone when it is unambiguous, else None.
    Short codes (``"+86:95588"``) have ``line_type`` SHORT_CODE and no zone.
    """

    e164: str  # canonical form from numbers.normalise
    country_code: int
    region: str | None  # ISO 3166 region, e.g. "CN", "US"; None when unknown
    line_type: LineType = LineType.UNKNOWN
    province: str | None = None  # CN: 广东省 / 北京市; US: state abbreviation
    city: str | None = None  # CN: 深圳市; US: city name
    timezones: tuple[str, ...] = ()
    carrier: str | None = None
    valid: bool = False  # a valid (allocated-range) number per phonenumbers metadata

    @property
    def timezone(self) -> str | None:
        return self.timezones[0] if len(self.timezones) == 1 else None

    @property
    def national(self) -> str:
        """The national significant number (digits after the country code)."""
        head, _, tail = self.e164.partition(":")
        return tail if tail else head[1 + len(str(self.country_code)):]


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """One rule's result in ``rules.engine.explain`` (CLI dry run, API).

    ``outcome`` is "matched" (would block), "passed", or "skipped" (purpose/region filter,
    or exempted by an allow/consent list: see ``message``). ``decisive`` marks the rule
    whose block decide() returns; shadow-mode matches have ``mode`` SHADOW.
    """

    rule_id: str
    kind: str
    mode: RuleMode
    outcome: str
    reason: str = ""
    message: str = ""
    figures: Mapping[str, object] = field(default_factory=dict)
    decisive: bool = False
    cause: int | None = None
