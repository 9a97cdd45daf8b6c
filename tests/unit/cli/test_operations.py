"""Operating a store: ``outguard backup`` while the store is written to, ``outguard prune``
for call-log retention, ``outguard tokens list``, the store file's mode and JSON logs."""

from __future__ import annotations

import json
import logging
import sqlite3
import stat
import threading
import time
from pathlib import Path

from click.testing import CliRunner

from outguard import logfmt
from outguard.cli import cli
from outguard.store.base import CallRecord
from outguard.store.sqlite import SQLiteStore
from tests.unit.cli.conftest import Cli

DAY = 86400.0


def record(i: int, at: float) -> CallRecord:
    return CallRecord(decision_id=f"d{i}", channel_id=f"PJSIP/a-{i:08x}", adapter="ari",
                      tenant="t1", account="a1", caller_id="+861088886666",
                      destination="+8613800138000", verdict="allow", rule="", reason="ok",
                      shadow=(), decision_us=90, at=at)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_store_and_its_wal_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    with SQLiteStore(path) as store:
        store.create_tenant("t1", "Tenant one")
        assert mode(path) == 0o600
        assert mode(Path(f"{path}-wal")) == 0o600


def test_backup_is_one_consistent_state_while_calls_are_written(og: Cli, tmp_path: Path) -> None:
    dest = tmp_path / "backups" / "copy.db"
    dest.parent.mkdir()
    stop = threading.Event()
    written, committed = [0], [0]
    with og.store() as store:
        def writer() -> None:  # the service logging calls meanwhile, in order
            while not stop.is_set() and written[0] < 20_000:
                for _ in range(200):
                    store.record_decision(record(written[0], time.time()))
                    written[0] += 1
                store.flush()
                committed[0] = written[0]

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            deadline = time.monotonic() + 60
            while committed[0] < 1000 and time.monotonic() < deadline:
                time.sleep(0.01)
            before = committed[0]
            done = og.json("backup", str(dest))
        finally:
            stop.set()
            thread.join()
    assert before >= 1000
    assert done["backup"] == str(dest) and done["bytes"] == dest.stat().st_size
    assert mode(dest) == 0o600
    assert not Path(f"{dest}-wal").exists()  # one file, nothing to carry beside it
    conn = sqlite3.connect(dest)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ids = {int(r[0][1:]) for r in conn.execute("SELECT decision_id FROM calls")}
        assert conn.execute("SELECT id FROM tenants").fetchall() == [("t1",)]
    finally:
        conn.close()
    # everything committed before the backup began, and one state: a gapless prefix of
    # the rows written in order, never a later row without an earlier one
    assert before <= len(ids) <= written[0]
    assert ids == set(range(len(ids)))
    with SQLiteStore(dest) as restored:  # a backup opens as a store
        assert restored.get_tenant("t1").name == "Tenant one"


def test_backup_refuses_to_overwrite_unless_forced(og: Cli, tmp_path: Path) -> None:
    dest = tmp_path / "copy.db"
    dest.write_text("precious")
    result = og("backup", str(dest), code=2)
    assert "exists (pass --force" in result.output and dest.read_text() == "precious"
    og("backup", str(dest), "--force")
    assert sqlite3.connect(dest).execute("SELECT count(*) FROM tenants").fetchone()[0] == 1


def test_prune_deletes_only_calls_older_than_the_retention(og: Cli) -> None:
    now = time.time()
    with og.store() as store:
        for i in range(12_000):  # more than one prune chunk
            store.record_decision(record(i, now - 400 * DAY + i))
        for i in range(12_000, 12_005):
            store.record_decision(record(i, now - 10 * DAY))
        store.flush()
    assert og.json("prune", "--older-than", "180", "--dry-run")["would_delete"] == 12_000
    assert og.json("prune", "--older-than", "180")["deleted"] == 12_000
    with og.store() as store:
        left = [c.call.decision_id for c in store.iter_calls()]
        audit = store.list_audit()
    assert left == [f"d{i}" for i in range(12_000, 12_005)]
    assert [a.action for a in audit if a.action == "calls.prune"] == ["calls.prune"]
    assert "--older-than DAYS" in og("prune", code=2).output
    og("prune", "--older-than", "0", code=2)


def test_tokens_list_shows_ids_users_and_revocation_never_secrets(og: Cli) -> None:
    with og.store() as store:
        store.create_user("alice", "admin")
        store.create_user("bob", "readonly")
        first = store.create_token("alice", label="laptop")
        store.create_token("bob", label="prometheus")
        store.revoke_token(first.id)
    rows = og.json("tokens", "list")
    assert {(r["user"], r["role"], r["label"], r["revoked"]) for r in rows} == {
        ("alice", "admin", "laptop", True), ("bob", "readonly", "prometheus", False)}
    text = og("tokens", "list", "--user", "bob").output
    assert "prometheus" in text and "alice" not in text and "og_" not in text
    assert first.token.split("_", 2)[2] not in og("tokens", "list").output


def test_json_log_lines_are_one_object_each_with_the_formatted_message() -> None:
    formatter = logfmt.JsonFormatter()
    record_ = logging.LogRecord("outguard.test", logging.WARNING, __file__, 1,
                                "channel %s to %s: %s", ("PJSIP/a-1", "+86138****8000",
                                                         "说明 \"quoted\"\nnext"), None)
    line = formatter.format(record_)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["level"] == "WARNING" and parsed["logger"] == "outguard.test"
    assert parsed["message"] == 'channel PJSIP/a-1 to +86138****8000: 说明 "quoted"\nnext'
    assert parsed["ts"].endswith("+00:00")


def test_the_cli_takes_the_log_format_from_an_option_or_the_environment() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--log-format", "yaml", "tokens", "--help"])
    assert result.exit_code == 2 and "yaml" in result.output
    result = runner.invoke(cli, ["tokens", "--help"], env={"OUTGUARD_LOG_FORMAT": "json"})
    assert result.exit_code == 0
