"""The call-log spool: rows the store could not take, kept durably until it can.

When the store refuses writes (read-only, disk full, I/O error, locked for longer than the
writer waits), the writer appends each failed batch here: one JSON line per row, written
with one ``write`` and ``fsync``-ed before the batch counts as done. While the spool holds
rows, new rows are appended behind them (an outcome must follow its decision), and the
writer retries the store every ``retry_s``; once a whole spool commits in one transaction
the file is removed. Replaying is idempotent (``INSERT OR IGNORE`` for decisions, an
``UPDATE`` to the same values for outcomes, and for a decision that replaces an earlier
one's row the same replacement, followed again by its outcomes in order), so a crash
between the commit and the removal writes nothing twice.

A directory holds one spool, owned by one process (an exclusive ``flock`` on
``spool.lock``): the service spools, the CLI never does.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from outguard.errors import StoreError

logger = logging.getLogger(__name__)

#: row kinds, as the writer numbers them (REDO: a decision that replaces its row)
CALL, OUTCOME, REDO = 0, 1, 2
_TAGS = {CALL: "call", OUTCOME: "outcome", REDO: "redo"}
_KINDS = {tag: kind for kind, tag in _TAGS.items()}

SpoolItem = tuple[int, tuple[Any, ...]]

#: the values of the call-row columns added after the first spool format (13 columns), in
#: ``CallRecord.as_row`` order: purpose, campaign (migration 52), pbx (migration 80). A row
#: spooled by an older version is padded with the tail it lacks.
_CALL_ADDED: tuple[Any, ...] = (None, None, "")
CALL_WIDTH = 13 + len(_CALL_ADDED)


def default_spool_dir(store_path: str) -> str:
    """Where the service spools when ``spool_dir`` is not set: beside the store (for a
    PostgreSQL URL, ``outguard-<host>-<port>-<database>.spool`` in the working directory)."""
    if "://" in store_path:
        rest = store_path.split("://", 1)[1].split("?", 1)[0].rsplit("@", 1)[-1]
        return "outguard-" + "".join(c if c.isalnum() or c in "._" else "-" for c in rest) + ".spool"
    return str(Path(store_path).with_name(Path(store_path).name + ".spool"))


class Spool:
    """An append-only, fsync-ed file of call-log rows (see the module docstring)."""

    FILE = "calls.jsonl"

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.dir / "spool.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot open the call-log spool {self.dir}: {exc.strerror}",
                             path=str(self.dir)) from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise StoreError(f"the call-log spool {self.dir} is in use by another outguard",
                             path=str(self.dir)) from None
        self.path = self.dir / self.FILE
        self.depth = len(self.read())

    def close(self) -> None:
        os.close(self._lock_fd)

    def append(self, items: Iterable[SpoolItem]) -> int:
        """Append rows durably (one write, then fsync); raises OSError if it cannot."""
        data = "".join(
            json.dumps({"kind": _TAGS[kind], "row": list(row)}, separators=(",", ":")) + "\n"
            for kind, row in items
        ).encode()
        if not data:
            return 0
        new_file = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = os.write(fd, data)
            if written != len(data):  # a short write on a full disk: undo it, then fail
                os.ftruncate(fd, os.fstat(fd).st_size - written)
                raise OSError(28, "short write to the spool (disk full?)")
            os.fsync(fd)
        finally:
            os.close(fd)
        if new_file:
            self._sync_dir()
        count = data.count(b"\n")
        self.depth += count
        return count

    def read(self) -> list[SpoolItem]:
        """Every row in order; a torn last line (a crash mid-append) is skipped."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        items: list[SpoolItem] = []
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                kind, row = _KINDS[record["kind"]], tuple(record["row"])
                if kind == OUTCOME and len(row) == 5:  # spooled before calls.end_note
                    row = (*row[:4], None, row[4])
                if kind in (CALL, REDO) and len(row) < CALL_WIDTH:  # spooled by an older outguard
                    row = (*row, *_CALL_ADDED[len(row) - CALL_WIDTH:])
                items.append((kind, row))
            except (ValueError, KeyError, TypeError):
                if number >= len(lines) - 1:
                    logger.warning("spool %s: skipping a torn last line", self.path)
                else:
                    logger.error("spool %s:%d: unreadable row skipped: %r",
                                 self.path, number, line[:200])
        return items

    def clear(self) -> None:
        """The rows are in the store: remove the file."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        self._sync_dir()
        self.depth = 0

    def _sync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
