"""One definition of every figure outguard shows or acts on.

Reports (``outguard report``, ``GET /api/report``), the dashboard, the risk figures
behind ``outguard status`` / ``risk`` / ``GET /api/risk`` and the enforcement triggers all
compute their figures with the functions here, so 接通率 on the dashboard is the 接通率 a
trigger suspends on. ``DEFINITIONS`` is the text the dashboard and the API show for each.

- attempts: calls that reached outguard: allowed + blocked + failed.
- failed: calls outguard could not screen (an engine error, no snapshot in time, outguard
  stopping mid-decision, the channel gone before an answer): the failure policy answered
  them, and the call log holds them with verdict ``failed`` (``failed_open``: those the
  fail-open policy let through). A failed call is neither allowed nor blocked: it says
  nothing about the party, so no block figure counts it.
- went out: allowed calls and failed calls let through by fail-open. They count toward
  the caps and the attempts, and every outcome figure below is over them.
- ended: calls that went out whose end is known (answered or not); calls still ringing or
  in progress are not counted yet.
- connect rate (接通率) = answered / ended.
- short call: an answered call that lasted less than ``short_call_s`` seconds (the
  policy's ``[enforcement] short_call_s``, default 6); short-call ratio = short / answered.
- average duration = talk time of answered calls / answered.
- complaints are attributed to the caller ID complained about, to the account that placed
  the last allowed call from that caller ID to the complainant (unless the complaint names
  its account) and to that call's tenant (unless it names its tenant; failing both, the
  caller ID's owner).
"""

from __future__ import annotations

from typing import Any

#: an answered call shorter than this (seconds) is a short call, unless the policy's
#: ``[enforcement] short_call_s`` says otherwise
DEFAULT_SHORT_CALL_S = 6.0

#: what each figure means, shown by the dashboard (hover) and returned by the API
DEFINITIONS: dict[str, str] = {
    "attempts": "calls that reached outguard: allowed + blocked + failed",
    "allowed": "calls outguard let through on a verdict",
    "blocked": "calls outguard refused on a verdict",
    "failed": "calls outguard could not screen: the failure policy answered them",
    "failed_open": "failed calls the fail-open policy let through (they count as calls "
                   "that went out)",
    "ended": "calls that went out (allowed, or failed open) whose end is known",
    "answered": "calls that went out and the callee answered",
    "connect_rate": "接通率 = answered / ended (calls that went out whose end is known)",
    "avg_duration": "talk time of answered calls / answered calls, in seconds",
    "short_calls": "answered calls shorter than short_call_s seconds",
    "short_call_ratio": "short calls / answered calls",
    "listed_blocks": "calls blocked by a do-not-call, blacklist, complaint or register list",
    "complaints": "complaints attributed to the party: the caller ID complained about, the "
                  "account that last called the complainant from it, and that call's tenant",
    "marks": "distinct callees who marked the caller ID as harassing",
}

#: block reasons that come from a list (do-not-call, blacklist, complaints, registers)
LISTED_REASONS = frozenset({"dnc_listed", "blacklisted", "complaint_listed", "register_listed"})


def ratio(part: int | float, whole: int | float) -> float | None:
    """part / whole, None when there is nothing to divide by (no calls is not 0%)."""
    return part / whole if whole else None


def connect_rate(answered: int, ended: int) -> float | None:
    """接通率: answered / ended."""
    return ratio(answered, ended)


def short_call_ratio(short_calls: int, answered: int) -> float | None:
    return ratio(short_calls, answered)


def avg_duration(talk_s: float, answered: int) -> float | None:
    return round(talk_s / answered, 3) if answered else None


def is_short(duration: float, short_call_s: float) -> bool:
    """Whether an answered call of ``duration`` seconds is a short call."""
    return duration < short_call_s


def is_listed(reason: str) -> bool:
    return reason in LISTED_REASONS


def attribute_complaint(
    tenant: str | None, account: str | None, last_call: tuple[str, str, Any] | None,
) -> tuple[str | None, str | None]:
    """(tenant, account) a complaint counts against: what the complaint names, else the
    (account, tenant, ...) of the last allowed call from the caller ID to the
    complainant. The caller ID's owner is the tenant's last resort (the caller looks it
    up: it needs the store)."""
    if last_call is not None:
        account = account or last_call[0] or None
        tenant = tenant or last_call[1] or None
    return tenant, account
