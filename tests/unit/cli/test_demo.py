"""The demo's traps: every number and seat the banner says is refused is refused, with the
reason the banner names; ``--reset`` starts from a fresh demo call centre."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from outguard import demo
from outguard.cli import cli
from outguard.cli.serve import demo_admin_token



def in_hours() -> str:
    """10:00 Beijing time on the next working day after today: inside the demo's calling
    hours, and inside the suspension the demo starts now for 30 days."""
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=1)
    while day.weekday() == 6 or (day.month, day.day) in {(1, 1), (10, 1), (10, 2), (10, 3)}:
        day += timedelta(days=1)
    return f"{day.isoformat()}T10:00:00+08:00"


def check(db: Path, number: str, account: str) -> dict[str, object]:
    result = CliRunner().invoke(
        cli, ["check", number, "--account", account, "--caller-id", "01088886666",
              "--at", in_hours(), "--json", "--store", str(db)],
        env={"OUTGUARD_POLICY": "", "OUTGUARD_DEFAULT_TENANT": demo.TENANT},
        catch_exceptions=False)
    assert result.exit_code in (0, 5), result.output
    body: dict[str, object] = json.loads(result.stdout)
    return body


def reason_in_banner(subject: str) -> str:
    (line,) = [t for t in demo.traps() if t.split()[0] == subject]
    return line.rsplit(": ", 1)[1].split(",")[0].strip()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "demo" / "outguard.db"
    assert demo.seed(str(path))
    return path


@pytest.mark.parametrize("number", demo.DNC + demo.BLACKLIST)
def test_every_trap_number_in_the_banner_is_refused_for_the_reason_it_names(
        db: Path, number: str) -> None:
    body = check(db, number, "seat-01")
    assert (body["verdict"], body["reason"]) == ("block", reason_in_banner(number))


def test_the_suspended_seat_in_the_banner_is_refused_and_others_are_not(db: Path) -> None:
    body = check(db, "13800138000", demo.SUSPENDED_SEAT)
    assert (body["verdict"], body["reason"]) == ("block", reason_in_banner(demo.SUSPENDED_SEAT))
    assert check(db, "13800138000", "seat-01")["verdict"] == "allow"


def test_reset_removes_the_store_its_wal_and_the_kept_token(db: Path) -> None:
    token = demo_admin_token(str(db))
    removed = demo.reset(str(db))
    assert db in removed and db.with_name("admin-token") in removed
    assert not db.exists() and not db.with_name("admin-token").exists()
    assert demo.seed(str(db))  # seeded afresh
    assert demo_admin_token(str(db)) != token
    assert demo.reset(str(db / "nothing-here")) == []
