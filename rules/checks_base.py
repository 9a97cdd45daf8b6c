"""The pieces every rule kind shares: decision context, hit, base class."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, Protocol

from rules.model import CallAttempt, Counters, NumberInfo, Party, PartyKind
from rules.policy_types import Policy, RuleKind, RuleSpec


NO_EXEMPTIONS: Mapping[str, str] = MappingProxyType({})


@dataclass(slots=True)
class Ctx:
    """Everything a rule may read for one decision (built once per call)."""

    attempt: CallAttempt
    now: datetime
    ts: float  # epoch seconds of ``now``
    now_min: int  # minutes since the epoch (list expiry resolution)
    dest: str  # canonical destination (E.164 or +cc:short)
    dest_key: int  # numbers.to_key(dest)
    dest_lists: tuple[int, ...]  # ids of the lists the destination is on now (ListIndex)
    dest_digits: str  # digits only, country code first (prefix rules)
    dest_info: NumberInfo  # segment classification (numbers.segment_info): e164 not set
    caller: str | None  # canonical caller ID; None when missing or invalid
    caller_info: NumberInfo | None
    caller_error: str | None  # why the caller ID could not be normalised
    counters: Counters
    exempt: Mapping[str, str]  # rule id -> exempting list (NO_EXEMPTIONS when none)


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule matched (would block): reason code, readable detail, figures used."""

    reason: str
    detail: str
    figures: Mapping[str, Any] = field(default_factory=dict)


class Parts(Protocol):
    """What the snapshot builder hands to rule constructors."""

    policy: Policy
    parties: Mapping[tuple[PartyKind, str], Party]

    def party(self, kind: PartyKind, key: str) -> Party | None: ...

    def warn(self, message: str) -> None: ...


class Check:
    """A compiled rule. Subclasses set ``kind`` and implement ``evaluate``."""

    kind: ClassVar[RuleKind]
    __slots__ = ("spec", "filtered", "_purposes", "_regions", "_provinces")

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self._purposes = spec.purposes
        self._regions = spec.regions
        self._provinces = spec.provinces
        self.filtered = bool(spec.purposes or spec.regions or spec.provinces)

    def applies(self, ctx: Ctx) -> bool:
        """False when the rule's purpose, region or province filter excludes this call."""
        if self._purposes and ctx.attempt.purpose not in self._purposes:
            return False
        if self._regions and ctx.dest_info.region not in self._regions:
            return False
        return not self._provinces or ctx.dest_info.province in self._provinces

    def evaluate(self, ctx: Ctx) -> Hit | None:
        raise NotImplementedError

    def unexempt(self, ctx: Ctx) -> Hit | None:
        """A block that no exemption lifts (a litigator list); None for most kinds."""
        return None

    def figures(self, ctx: Ctx) -> dict[str, Any]:
        """What the rule looked at, for explain (not on the hot path)."""
        return {}
