"""What the call path and the shared cap store exchange (no Redis import: the embedded
mode loads this without redis-py)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


def cluster_call_id(channel_id: str, pbx: str) -> str:
    """A call's id across a cluster: its channel's unique id at its PBX
    (``<uniqueid>@<pbx>``).

    Asterisk's unique ids are unique per PBX only (``EPOCH.SEQUENCE``: two boxes started in
    the same second hand out the same ids unless ``systemname`` prefixes them), while in
    cluster mode a decision id is the key of everything the instances share: the call-log
    row on PostgreSQL, the Redis reservation (its idempotency key and its live-call slot
    members) and the call feed's events. Naming the PBX keeps two PBXes' calls two calls
    there; PBX names are ``[A-Za-z0-9_.-]`` (``config.check_pbx_name``), so ``@`` cannot be
    part of one."""
    return f"{channel_id}@{pbx}"


@dataclass(frozen=True, slots=True)
class CallKeys:
    """Who the call counts for."""

    call_id: str
    tenant: str
    account: str
    caller_id: str
    destination: str


@dataclass(frozen=True, slots=True)
class Reservation:
    """The script's answer: allowed (and reserved), or the first enforced cap reached."""

    allowed: bool
    rule_id: str = ""
    count: int = 0
    limit: int = 0
    shadow: tuple[str, ...] = ()  # shadow-mode caps that were reached
    duplicate: bool = False  # the call id had been seen: nothing was counted this time
    unavailable: bool = False  # Redis could not answer: decided by the failure policy


@dataclass
class CapHealth:
    """What the guard saw; exported as metrics."""

    available: bool = True
    failures: int = 0  # round trips that failed
    failed_open: int = 0  # calls let through uncounted
    failed_closed: int = 0  # calls blocked because Redis could not answer
    unscreened: int = 0  # calls that went out unscreened (fail-open), counted in the caps
    replayed: int = 0  # remembered calls counted after the return
    reheld: int = 0  # calls still up whose slots were taken again after an outage
    rebuilds: int = 0  # counters rebuilt from the call log
    dropped: int = 0  # remembered calls dropped (more than max_pending)
    pending: deque[tuple[str, str, str, str, str, float]] = field(default_factory=deque)
    releases: set[str] = field(default_factory=set)
