"""Holiday calendars: data, not code.

A calendar is a TOML file, one per jurisdiction, shipped in ``rules/calendars/`` (and
added to or overridden by the operator's own files). It holds either or both of:

- **years** listed as published (China's State Council notice each November: holidays and
  the weekend days worked instead, 调休), each with its source and the date it was
  checked; a listed year is *known*, any other year is not;
- **holiday rules** that a law defines for every year (a fixed date, the n-th weekday of
  a month, a day counted from Easter; with the statute's "observed" shift), known for
  every year from ``rules_from`` on.

Layout::

    [calendar]
    name = "cn"
    title = "Mainland China: public holidays and make-up working days"
    zone = "Asia/Shanghai"
    checked = 2026-12-02
    basis = "law"                 # law | practice
    cite = "..."
    rules_from = 1986             # only with [[holiday]] rules

    [[holiday]]                   # a rule, every year
    name = "Labor Day"
    month = 9
    weekday = "mon"
    nth = 1                       # 1..5, or -1 for the last
    # day = 4                     # a fixed date instead of weekday/nth
    # easter = -2                 # days from Western Easter Sunday instead (Good Friday)
    # observed = "sat_fri_sun_mon"  # see OBSERVED
    # offset = 1                  # days after the n-th weekday
    # even_years = true           # only in even years

    [[year]]                      # a published year
    year = 2026
    cite = "..."
    checked = 2026-12-02
    holidays = [2026-01-01, ...]
    workdays = [2026-01-04, ...]  # weekend days that are working days (调休)

Every problem is reported with the file and line (``PolicyError``). Pure but for reading the
shipped files (``shipped``).
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rules.errors import PolicyError, PolicyIssue

__all__ = ["CALENDAR_DIR", "Calendar", "HolidayRule", "YearList", "load_calendar",
           "combine", "merged", "parse_calendar", "shipped", "shipped_names", "window_calendar"]

CALENDAR_DIR = Path(__file__).parent / "calendars"
WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
#: how a fixed-date holiday on a weekend is observed besides the day itself: none; the
#: Friday before a Saturday and the Monday after a Sunday (5 U.S.C. 6103(b));
#: the Monday after a Sunday; the Monday after a Saturday or a Sunday; or both readings
OBSERVED = ("none", "sat_fri_sun_mon", "sun_mon", "sat_sun_mon", "sat_fri_mon_sun_mon")
BASES = ("law", "practice")
_TOML_POS = re.compile(r"at line (\d+)")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,40}")
_Err = Callable[[int, str, str], None]  # (line, key, message)


def easter(year: int) -> date:
    """Western (Gregorian) Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


@dataclass(frozen=True, slots=True)
class HolidayRule:
    """A holiday a law defines for every year."""

    name: str
    month: int = 0
    day: int | None = None
    weekday: int | None = None
    nth: int = 0
    easter: int | None = None
    observed: str = "none"
    offset: int = 0  # days after the n-th weekday (election day: the Tuesday after ...)
    even_years: bool = False  # only in even years (US general elections)

    def dates(self, year: int) -> list[date]:
        """The day itself and, when the law moves it off a weekend, the day observed."""
        if self.even_years and year % 2:
            return []
        if self.easter is not None:
            return [easter(year) + timedelta(days=self.easter)]
        if self.day is not None:
            return _observed(date(year, self.month, self.day), self.observed)
        assert self.weekday is not None
        if self.nth > 0:
            first = date(year, self.month, 1)
            day = first + timedelta(days=(self.weekday - first.weekday()) % 7
                                    + 7 * (self.nth - 1))
        else:
            nxt = date(year + self.month // 12, self.month % 12 + 1, 1)
            last = nxt - timedelta(days=1)
            day = last - timedelta(days=(last.weekday() - self.weekday) % 7)
        return [day + timedelta(days=self.offset)]


def _observed(day: date, how: str) -> list[date]:
    one = timedelta(days=1)
    if day.weekday() == 5:
        return [day, *([day - one] if how in ("sat_fri_sun_mon", "sat_fri_mon_sun_mon") else []),
                *([day + 2 * one] if how in ("sat_sun_mon", "sat_fri_mon_sun_mon") else [])]
    if day.weekday() == 6 and how != "none":
        return [day, day + one]
    return [day]


@dataclass(frozen=True, slots=True)
class YearList:
    """One year as published: its holidays and the weekend days worked instead."""

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]
    cite: str
    checked: date
    source: str  # file:line


@dataclass(frozen=True, slots=True, eq=False)  # hashed by identity (its years are a dict)
class Calendar:
    """A jurisdiction's working days: Monday-Friday, less its holidays, plus its make-up
    working days; known for the listed years and, with rules, every year from
    ``rules_from``."""

    name: str
    title: str
    zone: str
    basis: str
    cite: str
    checked: date
    source: str
    rules: tuple[HolidayRule, ...] = ()
    rules_from: int | None = None
    years: Mapping[int, YearList] = field(default_factory=dict)

    def known(self, year: int) -> bool:
        return year in self.years or (self.rules_from is not None and year >= self.rules_from)

    def known_until(self) -> date | None:
        """The last day of the last known year; None when rules cover every later year."""
        if self.rules_from is not None:
            return None
        return date(max(self.years), 12, 31) if self.years else None

    def holidays(self, year: int) -> dict[date, str]:
        """The year's holidays, by date, with their names."""
        out: dict[date, str] = {}
        if self.rules_from is not None and year >= self.rules_from:
            for rule in self.rules:
                for d in rule.dates(year):
                    out.setdefault(d, rule.name)
        listed = self.years.get(year)
        if listed is not None:
            out.update({d: f"{self.title}: public holiday" for d in listed.holidays
                        if d not in out})
        return out

    def workdays(self, year: int) -> frozenset[date]:
        listed = self.years.get(year)
        return listed.workdays if listed is not None else frozenset()

    def is_working_day(self, day: date) -> bool:
        """Monday-Friday and not a holiday, or a make-up working day. Outside the known
        years: Monday-Friday (the caller flags it; see ``known``)."""
        if day in self.workdays(day.year):
            return True
        return day.weekday() < 5 and day not in _holiday_set(self, day.year)

    def dates(self, first: int, last: int) -> tuple[dict[date, str], frozenset[date]]:
        """(holidays with names, make-up working days) of the known years in
        [first, last]."""
        names: dict[date, str] = {}
        work: set[date] = set()
        for year in range(first, last + 1):
            if self.known(year):
                names.update(self.holidays(year))
                work |= self.workdays(year)
        return names, frozenset(work)


@functools.lru_cache(maxsize=256)
def _holiday_set(cal: Calendar, year: int) -> frozenset[date]:
    return frozenset(cal.holidays(year))


def merged(base: Calendar, extra: Calendar) -> Calendar:
    """``base`` with ``extra``'s years added, a year in both taken from ``extra`` whole
    (an operator's file adds a year or corrects one); rules from ``extra`` replace
    ``base``'s when it has any."""
    years = {**base.years, **extra.years}
    if extra.rules:
        return replace(base, rules=extra.rules, rules_from=extra.rules_from, years=years)
    return replace(base, years=years)


# -- reading ---------------------------------------------------------------------------------

class _Lines:
    """Line numbers of tables and keys in TOML text (tomllib gives none)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def block(self, header: str, index: int = 0) -> int:
        seen = 0
        pat = re.compile(rf"^\s*\[\[?\s*{re.escape(header)}\s*\]\]?\s*(#.*)?$")
        for i, line in enumerate(self.lines):
            if pat.match(line):
                if seen == index:
                    return i + 1
                seen += 1
        return 0

    def key(self, header: str, index: int, key: str) -> int:
        start = self.block(header, index)
        if start == 0:
            return 0
        pat = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for i in range(start, len(self.lines)):
            if re.match(r"^\s*\[", self.lines[i]):
                break
            if pat.match(self.lines[i]):
                return i + 1
        return start

    def date_line(self, header: str, index: int, value: date, key: str) -> int:
        """The line where a date is written in one key of one block (lists span lines)."""
        start = self.key(header, index, key) - 1
        for i in range(start, len(self.lines)):
            if i > start and re.match(r"^\s*\[", self.lines[i]):
                break
            if value.isoformat() in self.lines[i]:
                return i + 1
        return start


def parse_calendar(text: str, file: str) -> Calendar:
    """A calendar file's text, validated; PolicyError naming file and line otherwise."""
    issues: list[PolicyIssue] = []
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_POS.search(str(exc))
        raise PolicyError([PolicyIssue(file, int(m.group(1)) if m else 0, "",
                                       f"TOML: {exc}")]) from None
    lines = _Lines(text)

    def err(line: int, key: str, message: str) -> None:
        issues.append(PolicyIssue(file, line, key, message))

    for key in sorted(data.keys() - {"calendar", "holiday", "year"}):
        err(0, key, "unknown table (calendar, holiday, year)")
    head = data.get("calendar")
    if not isinstance(head, dict):
        raise PolicyError([PolicyIssue(file, 1, "calendar", "a calendar file needs a "
                                       "[calendar] table (name, title, zone, checked, "
                                       "basis, cite)")])

    def hkey(key: str) -> int:
        return lines.key("calendar", 0, key)

    for key in sorted(head.keys() - {"name", "title", "zone", "checked", "basis", "cite",
                                     "rules_from"}):
        err(hkey(key), f"calendar.{key}",
            "unknown key (name, title, zone, checked, basis, cite, rules_from)")
    name, title, zone = head.get("name"), head.get("title", ""), head.get("zone")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        err(hkey("name"), "calendar.name", "must be a short lower-case name (cn, us-federal)")
    if not isinstance(title, str):
        err(hkey("title"), "calendar.title", "must be a string")
    if not isinstance(zone, str) or not zone_ok(zone):
        err(hkey("zone"), "calendar.zone", f"unknown time zone {zone!r}")
    checked = head.get("checked")
    if not _is_date(checked):
        err(hkey("checked"), "calendar.checked",
            "must be a date (checked = 2026-12-02): when the source was checked")
    basis, cite = head.get("basis"), head.get("cite")
    if basis not in BASES:
        err(hkey("basis"), "calendar.basis", f"must be law or practice, not {basis!r}")
    if not isinstance(cite, str) or not cite.strip():
        err(hkey("cite"), "calendar.cite", "must name the source")
    rules = _rules(data.get("holiday", []), lines, err)
    rules_from = head.get("rules_from")
    if rules and not isinstance(rules_from, int):
        err(hkey("rules_from"), "calendar.rules_from",
            "holiday rules need rules_from: the first year they apply")
    if not rules and rules_from is not None:
        err(hkey("rules_from"), "calendar.rules_from", "only with [[holiday]] rules")
    years = _years(data.get("year", []), lines, err)
    if not rules and not years:
        err(1, "calendar", "holds no [[year]] and no [[holiday]]: nothing to count on")
    if issues:
        raise PolicyError(issues)
    assert isinstance(name, str) and isinstance(zone, str) and isinstance(checked, date)
    return Calendar(name, str(title), zone, str(basis), str(cite), checked,
                    f"{file}:{lines.block('calendar')}", tuple(rules),
                    rules_from if rules else None, years)


def _rules(raw: object, lines: _Lines, err: _Err) -> list[HolidayRule]:
    if not isinstance(raw, list):
        err(0, "holiday", "use [[holiday]] blocks")
        return []
    out: list[HolidayRule] = []
    for n, v in enumerate(raw):
        def at(key: str, n: int = n) -> int:
            return lines.key("holiday", n, key)

        where = f"holiday[{n}]"
        if not isinstance(v, dict):
            err(lines.block("holiday", n), where, "must be a table")
            continue
        keys = ("name", "month", "day", "weekday", "nth", "offset", "easter", "observed",
                "even_years")
        for key in sorted(v.keys() - set(keys)):
            err(at(key), f"{where}.{key}", f"unknown key ({', '.join(keys)})")
        even = v.get("even_years", False)
        if not isinstance(even, bool):
            err(at("even_years"), f"{where}.even_years", "must be true or false")
            continue
        hname, observed = v.get("name"), v.get("observed", "none")
        if not isinstance(hname, str) or not hname.strip():
            err(at("name"), f"{where}.name", "must name the holiday")
            continue
        if observed not in OBSERVED:
            err(at("observed"), f"{where}.observed", f"must be one of {', '.join(OBSERVED)}")
            continue
        if "easter" in v:
            if not isinstance(v["easter"], int) or abs(v["easter"]) > 100 or len(v) > 3:
                err(at("easter"), f"{where}.easter",
                    "days from Easter Sunday (-2: Good Friday), alone with name")
                continue
            out.append(HolidayRule(hname, easter=v["easter"], even_years=even))
            continue
        month = v.get("month")
        if not isinstance(month, int) or not 1 <= month <= 12:
            err(at("month"), f"{where}.month", "must be 1..12")
            continue
        if "day" in v:
            day = v["day"]
            ok = isinstance(day, int) and "weekday" not in v and "nth" not in v
            try:
                ok = ok and bool(date(2024, month, day))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                err(at("day"), f"{where}.day", "a day of that month (alone: no weekday/nth)")
                continue
            out.append(HolidayRule(hname, month, day=day, observed=observed,
                                   even_years=even))
            continue
        weekday, nth = WEEKDAYS.get(str(v.get("weekday"))), v.get("nth")
        if weekday is None:
            err(at("weekday"), f"{where}.weekday",
                "a fixed day (day = 4), or weekday (mon..sun) with nth, or easter")
            continue
        if nth not in (1, 2, 3, 4, 5, -1):
            err(at("nth"), f"{where}.nth", "must be 1..5, or -1 for the last")
            continue
        if observed != "none":
            err(at("observed"), f"{where}.observed", "only fixed dates move when observed")
            continue
        offset = v.get("offset", 0)
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= 6:
            err(at("offset"), f"{where}.offset", "days after that weekday: 0..6")
            continue
        out.append(HolidayRule(hname, month, weekday=weekday, nth=nth, offset=offset,
                               even_years=even))
    return out


def _years(raw: object, lines: _Lines, err: _Err) -> dict[int, YearList]:
    if not isinstance(raw, list):
        err(0, "year", "use [[year]] blocks")
        return {}
    out: dict[int, YearList] = {}
    for n, v in enumerate(raw):
        def at(key: str, n: int = n) -> int:
            return lines.key("year", n, key)

        where = f"year[{n}]"
        if not isinstance(v, dict):
            err(lines.block("year", n), where, "must be a table")
            continue
        for key in sorted(v.keys() - {"year", "holidays", "workdays", "cite", "checked"}):
            err(at(key), f"{where}.{key}",
                "unknown key (year, holidays, workdays, cite, checked)")
        year, cite, checked = v.get("year"), v.get("cite"), v.get("checked")
        if not isinstance(year, int) or not 1949 <= year <= 2200:
            err(at("year"), f"{where}.year", f"must be a year, not {year!r}")
            continue
        if year in out:
            err(at("year"), f"{where}.year", f"{year} is listed twice")
        if not isinstance(cite, str) or not cite.strip():
            err(at("cite"), f"{where}.cite", "must name the notice or source of that year")
        if not _is_date(checked):
            err(at("checked"), f"{where}.checked", "must be a date: when it was checked")
        sets: dict[str, frozenset[date]] = {}
        for key in ("holidays", "workdays"):
            values = v.get(key, [])
            if not isinstance(values, list) or not all(_is_date(d) for d in values):
                err(at(key), f"{where}.{key}", "must be a list of dates, e.g. [2026-10-01]")
                values = []
            for d in values:
                if d.year != year:
                    err(lines.date_line("year", n, d, key), f"{where}.{key}",
                        f"{d} is not in {year}")
            sets[key] = frozenset(values)
        for d in sorted(sets["holidays"] & sets["workdays"]):
            err(lines.date_line("year", n, d, "workdays"), f"{where}.workdays",
                f"{d} is both a holiday and a make-up working day")
        for d in sorted(sets["workdays"]):
            if d.weekday() < 5:
                err(lines.date_line("year", n, d, "workdays"), f"{where}.workdays",
                    f"{d} is a weekday: a make-up working day is a Saturday or Sunday")
        if isinstance(checked, date):
            out[year] = YearList(year, sets["holidays"], sets["workdays"], str(cite),
                                 checked, f"{lines.block('year', n)}")
    return out


def _is_date(value: object) -> bool:
    return isinstance(value, date) and not hasattr(value, "hour")


def zone_ok(zone: str) -> bool:
    """A time zone name this machine knows."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def load_calendar(path: str | Path) -> Calendar:
    """A calendar file; PolicyError (file and line) when it cannot be read or is wrong."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([PolicyIssue(str(p), 0, "", f"cannot read {p}: {exc}")]) from None
    cal = parse_calendar(text, str(p))
    # a year's source line is relative to its file
    years = {y: replace(v, source=f"{p}:{v.source}") for y, v in cal.years.items()}
    return replace(cal, years=years)


def shipped_names() -> list[str]:
    return sorted(p.stem for p in CALENDAR_DIR.glob("*.toml"))


@functools.lru_cache(maxsize=32)
def shipped(name: str) -> Calendar:
    """A calendar shipped with outguard (``rules/calendars/NAME.toml``)."""
    path = CALENDAR_DIR / f"{name}.toml"
    if not _NAME.fullmatch(name) or not path.is_file():
        raise PolicyError([PolicyIssue("", 0, "calendar", f"no calendar {name!r} (shipped: "
                                       f"{', '.join(shipped_names())})")])
    return load_calendar(path)


#: the years a window's ``calendar`` fills in (those its calendar knows)
WINDOW_YEARS = (2015, 2075)


def window_calendar(name: object, own: Mapping[str, Calendar]) -> Calendar:
    """The calendar a window names: the policy's own (its ``calendars`` files, merged over
    the shipped one of that name) or a shipped one. PolicyError when there is none."""
    if not isinstance(name, str):
        raise PolicyError([PolicyIssue("", 0, "calendar", "must be a calendar name")])
    found = own.get(name)
    return found if found is not None else shipped(name)


def combine(extras: Iterable[Calendar]) -> dict[str, Calendar]:
    """The operator's calendars by name, each merged over the shipped one of its name (its
    years added or replacing the shipped years), in the order given."""
    out: dict[str, Calendar] = {}
    for extra in extras:
        base = out.get(extra.name)
        if base is None and extra.name in shipped_names():
            base = shipped(extra.name)
        out[extra.name] = extra if base is None else merged(base, extra)
    return out
