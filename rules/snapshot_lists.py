"""Building the list index and list views from the store's streamed entries."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from rules.model import ListEntry, ListInfo, ListKind, Scope
from rules.policy_types import ListSpec
from rules.tables import MAX_LISTS, ListIndex, ListIndexBuilder

_SHORT = re.compile(r"\+([1-9]\d{0,2}):(\d{3,6})")


@dataclass(frozen=True, slots=True)
class ListView:
    """One named list in a snapshot; its numbers are in the snapshot's ``ListIndex``."""

    spec: ListSpec
    list_id: int  # the id the ListIndex reports for this list
    imported_at: datetime | None = None  # the copy's date: release date, else import time
    evidence: Mapping[int, str] = field(default_factory=dict)  # consent lists only
    size: int = 0  # entries kept at build time
    given: Mapping[int, float] = field(default_factory=dict)  # consent lists: entry times

    def applies(self, tenant: str, campaign: str | None) -> bool:
        scope = self.spec.scope
        if scope is Scope.GLOBAL:
            return True
        if scope is Scope.TENANT:
            return self.spec.scope_key == tenant
        return campaign is not None and self.spec.scope_key == campaign

    def scope_text(self) -> str:
        if self.spec.scope is Scope.GLOBAL:
            return "global"
        return f"{self.spec.scope.value} {self.spec.scope_key}"


def merge_specs(
    declared: Mapping[str, ListSpec], infos: Iterable[ListInfo], warn: Callable[[str], None]
) -> tuple[dict[str, ListSpec], dict[str, datetime | None]]:
    """Policy-declared lists plus the store's; the policy's kind and scope win."""
    specs = dict(declared)
    imported: dict[str, datetime | None] = {name: None for name in specs}
    for info in infos:
        if not isinstance(info, ListInfo) or not info.name:
            warn(f"store list {info!r}: not a ListInfo with a name; skipped")
            continue
        have = specs.get(info.name)
        if have is None:
            specs[info.name] = ListSpec(info.name, info.kind, info.scope, info.scope_key, source="store")
        elif (have.kind, have.scope, have.scope_key) != (info.kind, info.scope, info.scope_key):
            warn(
                f"list {info.name!r}: store says {info.kind.value}/{info.scope.value}/"
                f"{info.scope_key}, policy says {have.kind.value}/{have.scope.value}/"
                f"{have.scope_key}; the policy wins"
            )
        copy_of = info.released_at if info.released_at is not None else info.imported_at
        if copy_of is not None and copy_of.tzinfo is None:
            warn(f"list {info.name!r}: imported_at/released_at has no time zone; treated as"
                 " never imported")
        else:
            imported[info.name] = copy_of  # the register's age runs from its release
    return specs, imported


def entry_key(e164: object) -> int | None:
    """The int key of a canonical number, or None when it is not one."""
    if not isinstance(e164, str) or not e164.isascii() or len(e164) < 3 or e164[0] != "+":
        return None
    rest = e164[1:]
    if rest.isdigit():
        return int(rest) if rest[0] != "0" and len(rest) <= 15 else None
    m = _SHORT.fullmatch(e164)
    return -int(m.group(1) + m.group(2)) if m else None


@dataclass
class EntryStats:
    rows: int = 0
    kept: int = 0
    expired: int = 0
    bad: int = 0
    #: reassigned lists: number key -> latest disconnect time (epoch seconds)
    disconnected: dict[int, float] = field(default_factory=dict)


def build_views(
    specs: Mapping[str, ListSpec],
    imported: Mapping[str, datetime | None],
    entries: Iterable[ListEntry],
    now: datetime,
    warn: Callable[[str], None],
) -> tuple[dict[str, ListView], ListIndex, EntryStats]:
    """Stream entries into one index; bad rows are reported and skipped."""
    names = list(specs)
    if len(names) > MAX_LISTS:
        warn(f"{len(names)} lists: only the first {MAX_LISTS} are used")
        names = names[:MAX_LISTS]
    ids = {name: i for i, name in enumerate(names)}
    sizes = [0] * len(names)
    evidence: dict[str, dict[int, str]] = {n: {} for n in names if specs[n].kind is ListKind.CONSENT}
    given: dict[str, dict[int, float]] = {n: {} for n in evidence}
    reassigned = {n for n in names if specs[n].kind is ListKind.REASSIGNED}
    builder = ListIndexBuilder()
    now_min = int(now.timestamp() // 60)
    stats = EntryStats()
    for entry in entries:
        stats.rows += 1
        try:
            name, e164, expires = entry.list_name, entry.e164, entry.expires_at
        except AttributeError:
            stats.bad += 1
            warn(f"row {stats.rows}: not a ListEntry ({entry!r}); skipped")
            continue
        lid = ids.get(name)
        key = entry_key(e164)
        if lid is None or key is None:
            stats.bad += 1
            what = f"unknown list {name!r}" if lid is None else f"list {name!r}: {e164!r} is not E.164 or +cc:short"
            warn(f"row {stats.rows}: {what}; skipped")
            continue
        until: int | None = None
        if expires is not None:
            if not isinstance(expires, datetime) or expires.tzinfo is None:
                stats.bad += 1
                warn(f"row {stats.rows}: list {name!r}: expires_at {expires!r} lacks a time zone; skipped")
                continue
            until = int(expires.timestamp() // 60)
            if until <= now_min:
                stats.expired += 1
                continue
        builder.add(key, lid, until)
        sizes[lid] += 1
        stats.kept += 1
        if name in evidence:
            if entry.evidence:
                evidence[name][key] = entry.evidence
            if isinstance(entry.given_at, datetime):
                given[name][key] = entry.given_at.timestamp()
        elif name in reassigned:
            _disconnected(stats, key, entry.disconnected_at, name, warn)
    views = {
        name: ListView(specs[name], ids[name], imported.get(name), evidence.get(name, {}),
                       sizes[ids[name]], given.get(name, {}))
        for name in names
    }
    return views, builder.build(), stats


def _disconnected(
    stats: EntryStats, key: int, when: object, name: str, warn: Callable[[str], None]
) -> None:
    """Keep the latest disconnect date of a reassigned number (its consent before it is void)."""
    if not isinstance(when, datetime) or when.tzinfo is None:
        warn(f"row {stats.rows}: reassigned list {name!r}: no disconnect date with a time zone;"
             " the entry voids every consent given before it")
        ts = float("inf")
    else:
        ts = when.timestamp()
    if ts > stats.disconnected.get(key, float("-inf")):
        stats.disconnected[key] = ts
