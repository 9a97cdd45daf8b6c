"""Response deadlines of complaints that reach the company through a regulator's channel.

A complaint whose ``source`` names a channel (built in: ``12321``, ``12300``, ``fcc``,
``ofcom``; changed or added by the policy's ``[enforcement.complaint_deadlines]``,
``outguard.enforcement.deadline_settings``) carries the date by which the company must
have acted on it (``due_at``), counted from the day the company received it
(``received_at``; default: when it was recorded). The day of receipt does not count; a
deadline ends at midnight, in the channel's zone, of its last day. Working days are
counted on a holiday calendar (``rules.holidays``: data files, one per jurisdiction);
``next_working_day`` moves a deadline that ends on a day off to the next working day
(47 CFR 1.4(j) for the FCC). Each figure says whether it is law or practice, and where it
comes from (README, "Complaint deadlines").

Outside the years a calendar knows, days are counted Monday to Friday and the deadline is
flagged ``calendar_unknown`` (never silently): stored with the complaint, shown wherever it
is, counted in /metrics, and recomputed when the calendar learns the year.

Pure: no store, no clock (``now`` is passed in).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rules.holidays import Calendar, shipped

if TYPE_CHECKING:
    from outguard.store.base import Complaint
    from rules.policy_types import Policy

__all__ = ["CHANNELS", "Channel", "DUE_SOON_S", "Deadline", "Deadlines", "calendar_warnings",
           "channel_of",
           "deadline_state", "default_deadlines", "state_of"]

#: an open complaint is "due soon" this long before its deadline (default; API and CLI
#: take ``within``)
DUE_SOON_S = 2 * 86400.0
#: /health and ``outguard check`` warn this many days before a calendar's last known day
CALENDAR_WARN_DAYS = 45


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
    #: the holiday calendar (rules/calendars/NAME.toml) of working days; None: weekends only
    calendar: str | None = None
    #: a deadline that ends on a day off moves to the next working day
    next_working_day: bool = False
    origin: str = "built in"  # or the policy file:line that set it

    @property
    def uses_calendar(self) -> bool:
        return self.working_days or self.next_working_day or self.forward_days is not None

    def as_dict(self) -> dict[str, object]:
        return {"channel": self.key, "title": self.title, "act_days": self.act_days,
                "unit": "working days" if self.working_days else "days", "zone": self.zone,
                "basis": self.basis, "cite": self.cite, "forward_days": self.forward_days,
                "forward_basis": self.forward_basis or None,
                "forward_cite": self.forward_cite or None, "calendar": self.calendar,
                "next_working_day": self.next_working_day, "origin": self.origin}


CHANNELS: dict[str, Channel] = {c.key: c for c in (
    Channel(
        "12321", "12321 网络不良与垃圾信息举报受理中心 (harassing calls, spam)", 15, True,
        "Asia/Shanghai", "practice",
        "the 12321 centre's published handling process: the company acts on a forwarded "
        "report within 15 working days (no statute states the figure)",
        forward_days=3, forward_basis="practice",
        forward_cite="the 12321 centre's published handling process: a report is checked "
                     "within 1 and forwarded within 3 working days", calendar="cn"),
    Channel(
        "12300", "12300 工业和信息化部电信用户申诉受理中心 (telecom user appeals)", 15, True,
        "Asia/Shanghai", "practice",
        "same handling time as 12321 for a forwarded appeal; the centre itself decides "
        "within 5 working days whether to accept an appeal and an operator must answer a "
        "user's complaint within 15 days before it may be appealed (《电信用户申诉处理办法》, "
        "MIIT Order No. 35, 2016, arts. 10, 14: law)",
        forward_days=5, forward_basis="law",
        forward_cite="《电信用户申诉处理办法》 (MIIT Order No. 35, 2016) art. 14: acceptance "
                     "decided within 5 working days of receipt", calendar="cn"),
    Channel(
        "fcc", "FCC informal complaint (served on the company)", 30, False,
        "America/New_York", "practice",
        "47 CFR 1.717: the company answers an informal complaint the FCC serves on it in "
        "writing within the time the FCC prescribes (law); the FCC's notices give 30 days "
        "(practice), and 47 CFR 1.718 runs from that due date; a period ending on a "
        "Saturday, Sunday or federal holiday ends on the next business day (47 CFR "
        "1.4(e)(1), 1.4(j): law)", calendar="us-federal", next_working_day=True),
    Channel(
        "ofcom", "Ofcom (UK): a complaint under the Approved Complaints Code", 56, False,
        "Europe/London", "law",
        "Ofcom General Condition C4 and the Ofcom Approved Complaints Code: a complaint not "
        "resolved within 8 weeks entitles the person to alternative dispute resolution "
        "(the provider sends the ADR letter at 8 weeks)", calendar="uk-ew"),
)}


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a complaint's time ends, and whether a day counted lay outside the years its
    calendar knows (counted Monday-Friday then)."""

    due: float
    calendar_unknown: bool


@dataclass(frozen=True)
class Deadlines:
    """The channels in force and the calendars they count on (the shipped ones, plus the
    operator's files)."""

    channels: Mapping[str, Channel] = field(default_factory=lambda: dict(CHANNELS))
    calendars: Mapping[str, Calendar] = field(default_factory=dict)
    warn_days: int = CALENDAR_WARN_DAYS

    def channel_of(self, source: str) -> Channel | None:
        """The regulator's channel a complaint came through, or None (no deadline)."""
        return self.channels.get(source.strip().lower())

    def calendar(self, name: str | None) -> Calendar | None:
        if name is None:
            return None
        found = self.calendars.get(name)
        return found if found is not None else shipped(name)

    def due_at(self, channel: Channel, received_at: float) -> Deadline:
        """When the company's time to act on a complaint received at ``received_at``
        ends."""
        return _add_days(channel, self.calendar(channel.calendar), channel.working_days,
                         channel.act_days, received_at, channel.next_working_day)

    def forward_by(self, channel: Channel, reported_at: float) -> Deadline | None:
        """When the channel should have forwarded a report made at ``reported_at`` (None
        when the channel states no forwarding time). A complaint received later than this
        was forwarded late: its deadline still runs from receipt."""
        if channel.forward_days is None:
            return None
        return _add_days(channel, self.calendar(channel.calendar), True,
                         channel.forward_days, reported_at, False)

    def calendar_warnings(self, now: float, extra_days: int = 0) -> list[str]:
        """Why deadlines may soon be counted on weekdays only: each calendar a channel
        counts on whose last known day is within ``warn_days`` (plus the longest time to
        act: a complaint received today may run past it). Empty: all is known."""
        out: list[str] = []
        seen: set[str] = set()
        for ch in self.channels.values():
            cal = self.calendar(ch.calendar) if ch.uses_calendar else None
            if cal is None or cal.name in seen:
                continue
            seen.add(cal.name)
            until = cal.known_until()
            if until is None:
                continue
            today = datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(cal.zone)).date()
            reach = max(_reach_days(c) for c in self.channels.values()
                        if c.calendar == cal.name and c.uses_calendar)
            left = (until - today).days
            if left < self.warn_days + reach + extra_days:
                users = ", ".join(sorted(c.key for c in self.channels.values()
                                         if c.calendar == cal.name and c.uses_calendar))
                state = (f"ended {-left} days ago" if left < 0 else f"ends in {left} days")
                out.append(
                    f"calendar {cal.name} ({cal.title}) is known until {until}, which "
                    f"{state}: deadlines of {users} that reach {until.year + 1} are counted "
                    f"Monday-Friday and flagged calendar_unknown; add {until.year + 1} "
                    "([enforcement.complaint_deadlines] calendars)")
        return out

    def unknown_years(self, channel: Channel, received_at: float, due_at: float) -> list[int]:
        """The years between receipt and deadline that the channel's calendar does not
        know (empty when it counts on no calendar)."""
        cal = self.calendar(channel.calendar) if channel.uses_calendar else None
        if cal is None:
            return []
        zone = ZoneInfo(channel.zone)
        first = datetime.fromtimestamp(received_at, UTC).astimezone(zone).year
        last = datetime.fromtimestamp(due_at - 1, UTC).astimezone(zone).year
        return [y for y in range(first, last + 1) if not cal.known(y)]


def calendar_warnings(deadlines: Deadlines, policy: Policy | None, now: float,
                      unknown_open: int = 0) -> list[str]:
    """Every reason to look at the holiday calendars now: a calendar that complaint
    deadlines count on ends its known years soon, one a calling window names does (after
    its last known year the window knows no holiday), or open complaints carry deadlines
    counted Monday-Friday (``unknown_open``). /health, ``outguard check``, ``outguard
    complaints channels`` and the API show these."""
    out = deadlines.calendar_warnings(now)
    if policy is not None:
        seen: set[str] = set()
        for window in policy.windows.values():
            if window.calendar is None or window.calendar in seen:
                continue
            seen.add(window.calendar)
            cal = deadlines.calendar(window.calendar)
            until = cal.known_until() if cal is not None else None
            if cal is None or until is None:
                continue
            today = datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(cal.zone)).date()
            if (until - today).days < deadlines.warn_days:
                users = ", ".join(sorted(w.name for w in policy.windows.values()
                                         if w.calendar == cal.name))
                out.append(f"calendar {cal.name} is known until {until}: after it the "
                           f"windows {users} know no holiday and no make-up working day; "
                           f"add {until.year + 1} (policy key calendars)")
    if unknown_open:
        out.append(f"{unknown_open} open complaint deadline(s) were counted Monday-Friday on "
                   "a year their holiday calendar does not know (calendar_unknown): check "
                   "them by hand, or add the year")
    return out


def _reach_days(channel: Channel) -> int:
    """About how many calendar days a deadline of the channel may span."""
    return channel.act_days * 2 if channel.working_days else channel.act_days + 7


@functools.lru_cache(maxsize=1)
def default_deadlines() -> Deadlines:
    """The built-in channels on the shipped calendars."""
    return Deadlines()


def channel_of(source: str) -> Channel | None:
    """The built-in channel a complaint came through, or None."""
    return default_deadlines().channel_of(source)


def _end_of(day: date, zone: ZoneInfo) -> float:
    return datetime.combine(day + timedelta(days=1), time(0), zone).timestamp()


def _add_days(channel: Channel, cal: Calendar | None, working: bool, days: int,
              start_ts: float, roll: bool) -> Deadline:
    zone = ZoneInfo(channel.zone)
    day = datetime.fromtimestamp(start_ts, UTC).astimezone(zone).date()
    unknown = False

    def working_day(d: date) -> bool:
        nonlocal unknown
        if cal is None:
            return d.weekday() < 5
        if not cal.known(d.year):
            unknown = True
        return cal.is_working_day(d)

    if working:
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if working_day(day):
                counted += 1
    else:
        day += timedelta(days=days)
        while roll and not working_day(day):
            day += timedelta(days=1)
    return Deadline(_end_of(day, zone), unknown)


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


def calendars_of(channels: Iterable[Channel]) -> set[str]:
    """The calendar names the channels count on."""
    return {c.calendar for c in channels if c.calendar is not None and c.uses_calendar}
