"""``outguard demo`` prints an admin token: made once, kept beside the demo store."""

from __future__ import annotations

import stat
from pathlib import Path

from outguard.cli.serve import DEMO_ADMIN, demo_admin_token
from outguard.store.sqlite import SQLiteStore


def test_the_demo_token_is_created_once_and_kept(tmp_path: Path) -> None:
    db = tmp_path / "outguard.db"
    token = demo_admin_token(str(db))
    assert demo_admin_token(str(db)) == token
    kept = tmp_path / "admin-token"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    with SQLiteStore(db) as store:
        user = store.verify_token(token)
    assert (user.name, user.role) == (DEMO_ADMIN, "admin")


def test_a_fresh_store_gets_a_fresh_token(tmp_path: Path) -> None:
    db = tmp_path / "outguard.db"
    first = demo_admin_token(str(db))
    for path in tmp_path.glob("outguard.db*"):
        path.unlink()
    second = demo_admin_token(str(db))
    assert second != first
    with SQLiteStore(db) as store:
        assert store.verify_token(second).name == DEMO_ADMIN
