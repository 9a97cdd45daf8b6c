"""How the Stasis application treats calls: where allowed calls go, what failure means."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallSettings:
    #: dialplan context an allowed call continues to (priority 1 of the dialed extension)
    dial_context: str = "outguard-dial"
    #: dialplan context a plainly allowed call continues to: it sets the verdict's
    #: variables itself and goes on to ``dial_context`` (dialplan/outguard.conf)
    allow_context: str = "outguard-allow"
    #: closed: refuse calls outguard cannot screen; open: let them through unscreened
    fail_mode: str = "closed"
    #: Q.850 cause for fail-closed (34 -> SIP 503)
    fail_cause: int = 34
    #: how long a call may wait for screening to become ready (first snapshot) before the
    #: failure policy applies
    budget_ms: float = 200.0
    #: blocked calls with an announcement: "early" (183 + early media), "answer", or "off"
    announce: str = "early"
    announce_timeout_s: float = 20.0
    #: bridge mode: the outbound leg; {number} is the dialed extension, {e164} normalised
    bridge_endpoint: str = "PJSIP/{number}@carrier"
    ring_timeout_s: int = 45
    #: bridge mode: hang up both sides after this long connected
    max_duration_s: int = 3600

    def __post_init__(self) -> None:
        if self.fail_mode not in ("closed", "open"):
            raise ValueError(f"fail_mode must be closed or open, not {self.fail_mode!r}")
        if self.announce not in ("early", "answer", "off"):
            raise ValueError(f"announce must be early, answer or off, not {self.announce!r}")
        if not 1 <= self.fail_cause <= 127:
            raise ValueError(f"fail_cause must be a Q.850 cause 1-127, not {self.fail_cause}")
