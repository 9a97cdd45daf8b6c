"""Response deadlines of complaints that reach the company through a regulator's channel.

A complaint whose ``source`` names one of ``CHANNELS`` (``12321``, ``12300``, ``fcc``,
``ofcom``) carries the date by which the company must have acted on it (``due_at``),
counted from the day the company received it (``received_at``; default: when it was
recorded). Chinese channels count working days on the State Council's calendar of public
holidays and make-up working days (调休) that the ``cn`` preset holds (window
``cn_working_days``): the day of receipt does not count, a deadline ends at midnight
(Asia/Shanghai) of its last working day. The others count calendar days, ending at midnight
in the regulator's time zone. Each figure says whether it is law or practice, and where it
comes from (README, "Complaint deadlines").

Pure: no store, no clock (``now`` is passed in).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from outguard.store.base import Complaint

__all__ = ["CHANNELS", "Channel", "DUE_SOON_S", "channel_of", "deadline_state", "due_at",
           "forward_by", "state_of", "working_calendar"]

#: an open complaint is "due soon" this long before its deadline (default; API and CLI
#: take ``within``)
DUE_SOON_S = 2 * 86400.0


@dataclass(frozen=True, slots=True)
class Channel:
    """A regulator's complaint channel and the deadlines it sets."""

    key: str  # the complaint's ``source``
    title: str
    act_days: int  # the company acts (answers, resolves) within this many days of receipt
    working_days: bool  # act_days are working days (on ``calendar``), else calendar days
    zone: str  # where the days are counted
    basis: str  # law | practice (of act_days)
    cite: str
    #: the channel forwards the report to the company within this many working days of
    #: the report (None: not stated); ``forward_basis`` / ``forward_cite`` back it
    forward_days: int | None = None
    forward_basis: str = ""
    forward_cite: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"channel": self.key, "title": self.title, "act_days": self.act_days,
                "unit": "working days" if self.working_days else "days", "zone": self.zone,
                "basis": self.basis, "cite": self.cite, "forward_days": self.forward_days,
                "forward_basis": self.forward_basis or None,
                "forward_cite": self.forward_cite or None}


CHANNELS: dict[str, Channel] = {c.key: c for c in (
    Channel(
        "12321", "12321 网络不良与垃圾信息举报受理中心 (harassing calls, spam)", 15, True,
        "Asia/Shanghai", "practice",
        "the 12321 centre's published handling process: the company acts on a forwarded "
        "report within 15 working days (no statute states the figure)",
        forward_days=3, forward_basis="practice",
        forward_cite="the 12321 centre's published handling process: a report is checked "
                     "within 1 and forwarded within 3 working days"),
    Channel(
        "12300", "12300 工业和信息化部电信用户申诉受理中心 (telecom user appeals)", 15, True,
        "Asia/Shanghai", "practice",
        "same handling time as 12321 for a forwarded appeal; the centre itself decides "
        "within 5 working days whether to accept an appeal and an operator must answer a "
        "user's complaint within 15 days before it may be appealed (《电信用户申诉处理办法》, "
        "MIIT Order No. 35, 2016, arts. 10, 14: law)",
        forward_days=5, forward_basis="law",
        forward_cite="《电信用户申诉处理办法》 (MIIT Order No. 35, 2016) art. 14: acceptance "
                     "decided within 5 working days of receipt"),
    Channel(
        "fcc", "FCC informal complaint (served on the company)", 30, False,
        "America/New_York", "practice",
        "47 CFR 1.717: the company answers an informal complaint the FCC serves on it in "
        "writing within the time the FCC prescribes (law); the FCC's notices give 30 days "
        "(practice), and 47 CFR 1.718 runs from that due date"),
    Channel(
        "ofcom", "Ofcom (UK): a complaint under the Approved Complaints Code", 56, False,
        "Europe/London", "law",
        "Ofcom General Condition C4 and the Ofcom Approved Complaints Code: a complaint not "
        "resolved within 8 weeks entitles the person to alternative dispute resolution "
        "(the provider sends the ADR letter at 8 weeks)"),
)}


def channel_of(source: str) -> Channel | None:
    """The regulator's channel a complaint came through, or None (no deadline)."""
    return CHANNELS.get(source.strip().lower())


@functools.lru_cache(maxsize=1)
def working_calendar() -> tuple[frozenset[date], frozenset[date]]:
    """(holidays, make-up working days) of mainland China: the ``cn`` preset's
    ``cn_working_days`` window, the one home of that calendar."""
    from rules.policy import PRESET_DIR, load_policy

    window = load_policy(PRESET_DIR / "cn.toml").windows["cn_working_days"]
    return window.holidays, window.workdays


def is_working_day(day: date, holidays: frozenset[date], workdays: frozenset[date]) -> bool:
    if day in workdays:
        return True
    return day.weekday() < 5 and day not in holidays


def _end_of(day: date, zone: ZoneInfo) -> float:
    return datetime.combine(day + timedelta(days=1), time(0), zone).timestamp()


def _add_days(zone_name: str, working: bool, days: int, start_ts: float) -> float:
    zone = ZoneInfo(zone_name)
    day = datetime.fromtimestamp(start_ts, UTC).astimezone(zone).date()
    if not working:
        return _end_of(day + timedelta(days=days), zone)
    holidays, workdays = working_calendar()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day, holidays, workdays):
            counted += 1
    return _end_of(day, zone)


def due_at(channel: Channel, received_at: float) -> float:
    """When the company's time to act on a complaint received at ``received_at`` ends."""
    return _add_days(channel.zone, channel.working_days, channel.act_days, received_at)


def forward_by(channel: Channel, reported_at: float) -> float | None:
    """When the channel should have forwarded a report made at ``reported_at`` (None when
    the channel states no forwarding time). A complaint received later than this was
    forwarded late: its deadline still runs from receipt."""
    if channel.forward_days is None:
        return None
    return _add_days(channel.zone, True, channel.forward_days, reported_at)


def deadline_state(c: Complaint, now: float, soon_s: float = DUE_SOON_S) -> str:
    """A stored complaint's deadline state at ``now`` (see ``state_of``)."""
    return state_of(c.due_at.timestamp() if c.due_at else None,
                    c.closed_at.timestamp() if c.closed_at else None, now, soon_s)


def state_of(due: float | None, closed_at: float | None, now: float,
             soon_s: float = DUE_SOON_S) -> str:
    """closed | overdue | due_soon | open | none (no deadline)."""
    if closed_at is not None:
        return "closed"
    if due is None:
        return "none"
    if now >= due:
        return "overdue"
    if due - now <= soon_s:
        return "due_soon"
    return "open"
