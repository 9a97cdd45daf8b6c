"""The CLI says when a complaint deadline was counted Monday-Friday on a year its holiday
calendar does not know (calendar_unknown), and warns about calendars that end soon."""

from __future__ import annotations

import json

from outguard.cli import cli
from tests.unit.cli.conftest import Cli


def test_a_deadline_into_an_unknown_year_is_flagged_where_it_is_shown(og: Cli) -> None:
    added = og("complaints", "add", "13800138000", "--caller-id", "01088886666", "--source",
               "12321", "--at", "2030-12-20T09:00:00+08:00",
               "--received", "2030-12-20T10:00:00+08:00")
    # no calendar knows 2030-2031 yet: 15 weekdays, to the end of 10 January 2031
    assert "due 2031-01-10 16:00 UTC" in added.stdout
    assert "a deadline runs into a year its holiday calendar does not know" in added.stderr
    known = og("complaints", "add", "13800138001", "--caller-id", "01088886666", "--source",
               "12321", "--at", "2026-11-02T09:00:00+08:00",
               "--received", "2026-11-02T10:00:00+08:00")
    assert known.stderr == ""
    rows = og("complaints", "due", "--json", code=1).stdout  # exit 1: one is overdue
    flags = {r["received_at"][:10]: r["calendar_unknown"] for r in json.loads(rows)}
    assert flags == {"2026-11-02": False, "2030-12-20": True}
    text = og("complaints", "due", code=1)
    assert "CALENDAR_UNKNOWN" in text.stdout.splitlines()[0]
    assert "warning: calendar_unknown" in text.stderr


def test_the_channels_command_prints_the_figures_in_force_and_the_calendars(og: Cli) -> None:
    listed = og.runner.invoke(cli, ["complaints", "channels"])
    assert listed.exit_code == 0
    header = listed.stdout.splitlines()[0]
    assert "CALENDAR" in header and "NEXT_WORKING_DAY" in header
    assert "us-federal" in listed.stdout
