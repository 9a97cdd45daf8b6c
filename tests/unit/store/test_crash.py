"""kill -9 in the middle of an import or of call-log writes loses nothing acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from outguard.store import SQLiteStore

ROOT = Path(__file__).resolve().parents[3]
OLD = [f"+86137{i:08d}" for i in range(1000)]


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.unit.store.crash_child", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    proc.stderr.close()


@pytest.mark.parametrize("phase", ["reading", "merging"])
def test_kill_9_during_a_million_line_import_leaves_the_old_list(
    db_path: Path, tmp_path: Path, phase: str
) -> None:
    store = SQLiteStore(db_path)
    store.create_list("dnc", "dnc")
    store.add_entries("dnc", OLD)
    version = store.data_version()
    store.close()
    big = tmp_path / "million.txt"
    big.write_bytes(b"".join(b"138%08d\n" % i for i in range(1_000_000)))

    proc = _child("import", str(db_path), "dnc", str(big))
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line.strip())
        if line.startswith(phase) and int(line.split()[1]) >= 100_000:
            break
    assert "finished" not in seen, seen
    _kill(proc)

    store = SQLiteStore(db_path)
    try:
        assert [e.e164 for e in store.iter_entries("dnc")] == OLD
        assert store.data_version() == version
        assert store.list_audit()[-1].action == "list.add"
    finally:
        store.close()


def test_kill_9_during_call_log_writes_keeps_every_acknowledged_batch(db_path: Path) -> None:
    SQLiteStore(db_path).close()
    proc = _child("calls", str(db_path))
    assert proc.stdout is not None
    acked = 0
    for line in proc.stdout:
        acked = int(line.split()[1])
        if acked >= 5000:
            break
    _kill(proc)

    store = SQLiteStore(db_path)
    try:
        ids = {c.call.decision_id for c in store.iter_calls_since(0)}
    finally:
        store.close()
    assert len(ids) >= acked
    assert all(f"d{i}" in ids for i in range(acked))
