"""Bulk import of numbers into a list: streamed, all-or-nothing, hostile-input proof.

Formats: plain text (one number per line, ``#`` comments), CSV (a column named
number/phone/tel/电话/号码..., else the first column) and the US registry's
``area code,number`` rows (with or without that header line: a header naming an area
code column and a number column selects the format). Numbers may be in any form
``rules.numbers.normalise`` accepts, which takes only numbers valid in their numbering
plan: a line that is not one (a 7-digit local number, ``17963004961``) is rejected, never
stored as whatever its digits happen to parse to.

Imports never silently destroy a list: a ``replace`` import whose rejected lines exceed
``max_reject_ratio`` of the lines read (default ``DEFAULT_REJECT_RATIO``, 1%) is refused
and the list stays as it was; ``add`` imports take a ratio only when given one. The
result (and the refusal) name every rejected line's file, line number and reason (the
first ``max_rejects_kept``; all of them in ``reject_file``).

``released_at`` is the registry's release date of the copy (e.g. the date the US DNC
registry file was downloaded); registers' freshness runs from it (else from the import).

How it stays all-or-nothing: valid numbers are streamed into a TEMP staging table private
to the import's own connection (deduplicated by its key), so parsing millions of lines
neither holds the database write lock nor touches the list. At the end, one
``BEGIN IMMEDIATE`` transaction merges staging into the list (replace: delete what the file
no longer has, upsert the rest; add: insert what is new), stamps ``imported_at``, writes
the audit record and bumps ``data_version``. A failure, Ctrl-C or kill -9 before that
commit leaves the list exactly as it was; the TEMP table dies with the connection. On
PostgreSQL the staging is COPY into an unindexed TEMP table and the merge, in the same one
transaction, mostly rebuilds the list's partition in bulk (``outguard.store.pg_imports``).

Hostile input: lines longer than ``max_line`` bytes are rejected and skipped without
being held in memory; NUL bytes and undecodable lines (tried as UTF-8, then GB18030) are
rejected with their line number; a UTF-8 BOM and CRLF are accepted; UTF-16/32 files fail
at once. Every reject is counted, the first ``max_rejects_kept`` kept in memory, all of
them written to ``reject_file`` if given.
"""

from __future__ import annotations

import csv
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple, Protocol

from outguard.errors import ImportFailed, InvalidInput, Reject
from outguard.store.audit import bump_version, write_audit
from outguard.store.base import (
    ImportProgress, ImportResult, Normaliser, PlainLines, default_normaliser,
    number_error_types, plain_lines, to_ts,
)
from outguard.store.lists import list_id

if TYPE_CHECKING:
    from outguard.store.sqlite import SQLiteStore as ImportTarget

logger = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
BATCH = 20_000
CHUNK = 1 << 20  # bytes read at once where the file is bare numbers (``plain_lines``)
HEADER_NAMES = frozenset({
    "number", "numbers", "phone", "phone number", "phone_number", "phonenumber", "tel",
    "telephone", "mobile", "msisdn", "e164", "电话", "号码", "电话号码", "手机", "手机号",
    "手机号码",
})
BOMS_UNSUPPORTED = {
    b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16",
}
UTF8_BOM = b"\xef\xbb\xbf"
FORMATS = ("auto", "text", "csv", "us_registry")
DEFAULT_REJECT_RATIO = 0.01  # replace imports: refuse when more than 1% of lines are rejected
AREA_CODE_HEADERS = frozenset({"area code", "area_code", "areacode", "area", "npa", "区号"})
NUMBER_HEADERS = frozenset({"number", "phone", "phone number", "phone_number", "telephone",
                            "subscriber", "line", "号码", "电话"})
ProgressCallback = Callable[[ImportProgress], None]


class _BadRow(Exception):
    """A row whose shape is wrong (not a bad number): the message is the reject reason."""


def _show(raw: bytes) -> str:
    """The start of a line, printable, for reject reports."""
    text = raw[:60].rstrip(b"\r\n").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _registry_header(cells: list[str]) -> bool:
    """``area code,number`` (and spellings of it): the US registry's two-column header."""
    names = [c.strip().strip('"').strip().lower() for c in cells]
    return len(names) == 2 and names[0] in AREA_CODE_HEADERS and names[1] in NUMBER_HEADERS


def _as_is(text: str) -> str:
    """The text format's row: the line itself."""
    return text


class _Lines:
    """A binary file read by lines (``readline`` as the file's) or by chunks of whole
    lines, with one chunk pushed back in front to be read by lines again."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.buf, self.pos = f, b"", 0

    @property
    def pending(self) -> bool:
        return self.pos < len(self.buf)

    def push(self, chunk: bytes) -> None:
        self.buf, self.pos = chunk, 0

    def chunk(self, size: int, limit: int) -> bytes:
        """About ``size`` bytes, to the end of their last line (at most ``limit`` more)."""
        data = self.f.read(size)
        if data and data[-1:] != b"\n":
            data += self.f.readline(limit)
        return data

    def readline(self, limit: int) -> bytes:
        if self.pos >= len(self.buf):
            return self.f.readline(limit)
        end = self.buf.find(b"\n", self.pos, self.pos + limit)
        stop = end + 1 if end >= 0 else min(len(self.buf), self.pos + limit)
        line, self.pos = self.buf[self.pos:stop], stop
        if self.pos >= len(self.buf):
            self.buf, self.pos = b"", 0
            if end < 0 and len(line) < limit:  # the chunk ended inside this line
                line += self.f.readline(limit - len(line))
        return line

    def tell(self) -> int:
        return self.f.tell() - (len(self.buf) - self.pos)


def _cells(text: str, delimiter: str) -> list[str]:
    if '"' in text:
        return next(csv.reader([text], delimiter=delimiter), [])
    return text.split(delimiter)


class _Importer:
    staging: Staging

    def __init__(self, path: Path, *, fmt: str, region: str, normalise: Normaliser,
                 max_line: int, max_rejects_kept: int, reject_file: IO[str] | None,
                 progress: ProgressCallback | None, progress_every: int) -> None:
        if fmt not in FORMATS:
            raise InvalidInput(f"format must be one of {', '.join(FORMATS)}", field="format")
        self.path, self.fmt, self.region, self.norm = path, fmt, region, normalise
        self.max_line, self.max_kept = max_line, max_rejects_kept
        self.reject_file, self.progress, self.progress_every = reject_file, progress, progress_every
        self.errors = number_error_types()
        self.rejects: list[Reject] = []
        self.rejected = self.lines = self.valid = self.accepted = 0
        self.total_bytes: int | None = None
        self.bytes_read = 0
        self.first_line = 0

    # -- rejects and progress --------------------------------------------------------------

    def reject(self, line: int, reason: str, raw: bytes) -> None:
        self.rejected += 1
        if len(self.rejects) < self.max_kept:
            self.rejects.append(Reject(line, reason, _show(raw)))
        if self.reject_file is not None:
            self.reject_file.write(f"{line}\t{reason}\t{_show(raw)}\n")

    def report(self, phase: str) -> None:
        if self.progress is not None:
            self.progress(ImportProgress(phase, self.lines, self.bytes_read, self.total_bytes,
                                         self.valid, self.rejected))

    def fail(self, message: str, line: int | None = None) -> ImportFailed:
        return ImportFailed(message + self.why(), path=str(self.path), line=line,
                            rejects=self.rejects, rejected=self.rejected)

    def why(self, shown: int = 5) -> str:
        """The first rejected lines as ``file:line: reason``, for messages."""
        if not self.rejects:
            return ""
        lines = [f"\n  {self.path}:{r.line}: {r.reason} ({r.text})" for r in self.rejects[:shown]]
        more = self.rejected - min(shown, len(self.rejects))
        tail = f"\n  ... and {more} more rejected lines" if more > 0 else ""
        return "".join(lines) + tail

    # -- row shapes ------------------------------------------------------------------------

    def choose(self, text: str) -> tuple[Callable[[str], str], bool]:
        """Pick the row extractor from the first content line; True if it is a header."""
        fmt = self.fmt
        delimiter = next((d for d in (",", "\t", ";") if d in text), "")
        if fmt == "auto":
            if self.path.suffix.lower() in (".csv", ".tsv") or delimiter:
                cells = [c.strip() for c in _cells(text, delimiter or ",")]
                fmt = "us_registry" if (
                    len(cells) == 2 and len(cells[0]) == 3 and len(cells[1]) == 7
                    and cells[0].isdigit() and cells[1].isdigit()) or _registry_header(cells) \
                    else "csv"
            else:
                fmt = "text"
        if fmt == "text":
            return _as_is, False
        delimiter = delimiter or ","
        cells = [c.strip().strip('"').strip() for c in _cells(text, delimiter)]
        has_digits = any(ch.isdigit() for ch in text)
        if fmt == "us_registry":
            if not has_digits and not _registry_header(cells):
                raise ImportFailed(
                    f"{self.path}: line {self.first_line}: header {text[:60]!r} is not"
                    " 'area code,number' (the US registry format)", path=str(self.path),
                    line=self.first_line)
            return self._us_registry(delimiter), not has_digits
        column = next((i for i, c in enumerate(cells) if c.lower() in HEADER_NAMES), None)
        header = column is not None or not has_digits
        return self._csv_column(delimiter, column or 0), header

    @staticmethod
    def _csv_column(delimiter: str, column: int) -> Callable[[str], str]:
        def extract(text: str) -> str:
            cells = _cells(text, delimiter)
            if column >= len(cells):
                raise _BadRow(f"row has {len(cells)} column(s), the number is in column {column + 1}")
            return cells[column].strip().strip('"')
        return extract

    @staticmethod
    def _us_registry(delimiter: str) -> Callable[[str], str]:
        def extract(text: str) -> str:
            cells = [c.strip().strip('"') for c in _cells(text, delimiter)]
            if len(cells) != 2:
                raise _BadRow("expected 'area code,number'")
            area, number = cells
            if not (len(area) == 3 and len(number) == 7 and (area + number).isdigit()):
                raise _BadRow("expected a 3-digit area code and a 7-digit number")
            return "+1" + area + number
        return extract

    # -- reading ---------------------------------------------------------------------------

    def stage(self, conn: sqlite3.Connection, staging: Staging | None = None) -> None:
        """Parse the whole file into the staging table (SQLite: in one transaction on the
        temp schema; PostgreSQL: streamed with COPY, then deduplicated)."""
        self.staging = staging or _SqliteStaging(conn)
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise ImportFailed(f"cannot read {self.path}: {exc.strerror}", path=str(self.path)) from exc
        with f:
            try:
                self.total_bytes = os.fstat(f.fileno()).st_size
            except OSError:
                self.total_bytes = None
            head = f.read(4)
            for bom, name in BOMS_UNSUPPORTED.items():
                if head.startswith(bom):
                    raise self.fail(f"{self.path}: line 1: the file is {name}; save it as UTF-8"
                                    " (or GB18030) text", line=1)
            f.seek(len(UTF8_BOM) if head.startswith(UTF8_BOM) else 0)
            self.staging.begin()
            self._read(f, conn)
            self.accepted = self.staging.finish(self.accepted)

    def _read(self, f: IO[bytes], conn: sqlite3.Connection) -> None:
        src = _Lines(f)
        readline, limit, norm, region, errors = (
            src.readline, self.max_line + 1, self.norm, self.region, self.errors)
        extract: Callable[[str], str] | None = None
        plain: PlainLines | None = None  # a chunk of bare numbers at once, once text is chosen
        batch: list[str] = []
        next_report = self.progress_every
        lineno = 0
        while True:
            if plain is not None and not src.pending:
                chunk = src.chunk(CHUNK, limit)
                numbers = plain(chunk, region) if chunk else None
                if numbers is not None:
                    start, done = src.tell() - len(chunk), 0
                    while done < len(numbers):  # in pieces that end where progress is due
                        upto = min(len(numbers), done + next_report - lineno)
                        self._plain(numbers, chunk, done, upto, lineno - done, batch)
                        lineno += upto - done
                        done = upto
                        if lineno >= next_report:
                            ends = len(b"\n".join(chunk.split(b"\n")[:upto])) + 1
                            self.lines, self.bytes_read = lineno, start + min(ends, len(chunk))
                            self.report("reading")
                            next_report = lineno + self.progress_every
                    if len(batch) >= BATCH:
                        self._insert(conn, batch)
                        batch = []
                    continue
                src.push(chunk)  # something else in it: line by line
            raw = readline(limit)
            if not raw:
                break
            lineno += 1
            if len(raw) == limit and raw[-1:] != b"\n":
                self._skip_long(src, lineno, raw)
                continue
            if b"\x00" in raw:
                self.reject(lineno, "NUL byte in line (binary data?)", raw)
                continue
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                try:
                    text = raw.decode("gb18030").strip()
                except UnicodeDecodeError:
                    self.reject(lineno, "not UTF-8 or GB18030 text", raw)
                    continue
            if not text or text[0] == "#":
                continue
            try:
                if extract is None:
                    self.first_line = lineno
                    extract, header = self.choose(text)
                    plain = plain_lines(norm) if extract is _as_is else None
                    if header:
                        continue
                batch.append(norm(extract(text), region))
            except _BadRow as exc:
                self.reject(lineno, str(exc), raw)
                continue
            except errors as exc:
                self.reject(lineno, str(exc), raw)
                continue
            if len(batch) >= BATCH:
                self._insert(conn, batch)
                batch = []
            if lineno >= next_report:
                self.lines, self.bytes_read = lineno, src.tell()
                self.report("reading")
                next_report = lineno + self.progress_every
        self._insert(conn, batch)
        self.lines, self.bytes_read = lineno, self.total_bytes or src.tell()
        self.report("reading")

    def _plain(self, numbers: list[str | None], chunk: bytes, lo: int, hi: int, before: int,
               batch: list[str]) -> None:
        """Take ``numbers[lo:hi]`` of a chunk (``before``: the line number before the
        chunk); a line whose number is not valid goes through the normaliser, which names
        what is wrong."""
        part = numbers[lo:hi]
        if None not in part:
            batch.extend(part)  # type: ignore[arg-type]  # no None in it
            return
        lines = chunk.split(b"\n")
        for i in range(lo, hi):
            number = numbers[i]
            if number is not None:
                batch.append(number)
                continue
            try:
                batch.append(self.norm(lines[i].decode("ascii").strip(), self.region))
            except self.errors as exc:
                self.reject(before + i + 1, str(exc), lines[i])

    def _skip_long(self, src: _Lines, lineno: int, raw: bytes) -> None:
        size = len(raw)
        while chunk := src.readline(1 << 20):
            size += len(chunk)
            if chunk[-1:] == b"\n":
                break
        self.reject(lineno, f"line too long ({size} bytes; limit {self.max_line})", raw)

    def _insert(self, conn: sqlite3.Connection, batch: list[str]) -> None:
        if not batch:
            return
        self.valid += len(batch)
        self.accepted += self.staging.insert(batch)


class Merged(NamedTuple):
    """What a merge did to the list."""

    added: int
    removed: int
    total: int
    accepted: int  # distinct numbers staged


class Staging(Protocol):
    """Where an import parks its valid numbers before the merge (one connection's own), and
    how they are merged into the list (``outguard.store.pg_imports`` on PostgreSQL)."""

    def begin(self) -> None: ...
    def insert(self, batch: list[str]) -> int: ...  # numbers new to staging, if known
    def finish(self, accepted: int) -> int: ...  # numbers staged (distinct, if known)

    def merge(self, lid: int, mode: str, values: tuple[Any, ...]) -> Merged:
        """Apply staging to list ``lid`` inside the caller's transaction; ``values``:
        expires_at, created_at (now), source, reason, evidence."""
        ...


class _SqliteStaging:
    """A TEMP table keyed by number: duplicates are dropped as they arrive."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.accepted = 0

    def begin(self) -> None:
        self.conn.execute("BEGIN")

    def insert(self, batch: list[str]) -> int:
        batch.sort()  # key order: the staging B-tree is cheaper to fill
        before = self.conn.total_changes
        self.conn.executemany("INSERT OR IGNORE INTO temp.staging (e164) VALUES (?)",
                              zip(batch))
        return self.conn.total_changes - before

    def finish(self, accepted: int) -> int:
        self.conn.execute("COMMIT")
        self.accepted = accepted
        return accepted

    def merge(self, lid: int, mode: str, values: tuple[Any, ...]) -> Merged:
        return Merged(*_merge(self.conn, lid, mode, values), self.accepted)  # its own key order


def open_sqlite_import(path: str) -> tuple[sqlite3.Connection, Staging]:
    """The import's own SQLite connection and its TEMP staging table."""
    conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 60000")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA temp.cache_size = -262144")
        conn.execute("PRAGMA cache_size = -131072")
        conn.execute("CREATE TEMP TABLE staging (e164 TEXT PRIMARY KEY) WITHOUT ROWID")
    except BaseException:
        conn.close()
        raise
    return conn, _SqliteStaging(conn)


#: an upsert changes a row only when one of these differs (NULL-safe, in both engines'
#: SQL: ``IS DISTINCT FROM`` needs SQLite 3.39)
_CHANGED = " OR ".join(
    f"(list_entries.{c} IS NULL) <> (excluded.{c} IS NULL) OR list_entries.{c} <> excluded.{c}"
    for c in ("expires_at", "source", "reason", "evidence"))


def _merge(conn: sqlite3.Connection, lid: int, mode: str, values: tuple[object, ...],
           order: str = "e164") -> tuple[int, int, int]:
    """Apply staging to list ``lid`` inside the caller's transaction: (added, removed, total).

    Rows go in key order (the list's B-tree fills from one end, not at random). An empty
    list (a first import) takes a plain INSERT: staging is distinct, so nothing can
    conflict but a number another writer added meanwhile, which fails the import whole
    (PostgreSQL; SQLite holds the write lock). A replace rewrites only the rows whose
    expiry, source, reason or evidence change: importing the same file again writes
    nothing but the deletions."""
    count = "SELECT count(*) FROM list_entries WHERE list_id = ?"
    before = int(conn.execute(count, (lid,)).fetchone()[0])
    select = ("INSERT INTO list_entries (list_id, e164, expires_at, created_at, source, reason,"
              " evidence) SELECT ?, e164, ?, ?, ?, ?, ? FROM temp.staging WHERE true"
              " ORDER BY " + order)
    removed = 0
    if before == 0:
        conn.execute(select, (lid, *values))
    elif mode == "replace":
        removed = conn.execute(
            "DELETE FROM list_entries WHERE list_id = ? AND NOT EXISTS"
            " (SELECT 1 FROM temp.staging s WHERE s.e164 = list_entries.e164)", (lid,),
        ).rowcount
        conn.execute(select + " ON CONFLICT (list_id, e164) DO UPDATE SET"
                     " expires_at = excluded.expires_at, source = excluded.source,"
                     " reason = excluded.reason, evidence = excluded.evidence"
                     " WHERE " + _CHANGED, (lid, *values))
    else:
        conn.execute(select + " ON CONFLICT (list_id, e164) DO NOTHING", (lid, *values))
    total = int(conn.execute(count, (lid,)).fetchone()[0])
    return total - (before - removed), removed, total


def import_numbers(
    store: ImportTarget,
    list_name: str,
    path: str | os.PathLike[str],
    *,
    mode: str = "replace",
    fmt: str = "auto",
    region: str = "CN",
    source: str | None = None,
    reason: str | None = None,
    evidence: str | None = None,
    expires_at: datetime | None = None,
    progress: ProgressCallback | None = None,
    progress_every: int = 100_000,
    reject_file: str | os.PathLike[str] | None = None,
    max_rejects: int | None = None,
    max_rejects_kept: int = 1000,
    allow_empty: bool = False,
    max_line: int = MAX_LINE,
    normalise: Normaliser | None = None,
    actor: str = "system",
    max_reject_ratio: float | None = None,
    released_at: datetime | None = None,
) -> ImportResult:
    """Import a file into an existing list (``mode`` replace or add); all or nothing.

    Raises ImportFailed (list untouched) when the file cannot be read, is UTF-16/32, has
    no valid number (unless ``allow_empty``), has more than ``max_rejects`` rejects, or
    rejects more than ``max_reject_ratio`` of its lines (default 1% for replace, no limit
    for add). ``released_at`` (aware) is the registry's release date of the copy.
    """
    if mode not in ("replace", "add"):
        raise InvalidInput("mode must be replace or add", field="mode", value=mode)
    ratio = max_reject_ratio if max_reject_ratio is not None else (
        DEFAULT_REJECT_RATIO if mode == "replace" else None)
    if ratio is not None and not 0 <= ratio <= 1:
        raise InvalidInput("max_reject_ratio must be between 0 and 1 (0.01 = 1%)",
                           field="max_reject_ratio", value=ratio)
    if released_at is not None and released_at.tzinfo is None:
        raise InvalidInput("released_at needs a time zone", field="released_at")
    if released_at is not None and released_at.timestamp() > time.time() + 86400:
        raise InvalidInput(f"released_at {released_at.isoformat()} is in the future",
                           field="released_at")
    started = time.monotonic()
    file_path = Path(path)
    store.get_list(list_name)  # NotFound before reading anything
    rej_fh = open(reject_file, "w", encoding="utf-8") if reject_file else None  # noqa: SIM115
    imp = _Importer(file_path, fmt=fmt, region=region, normalise=normalise or default_normaliser(),
                    max_line=max_line, max_rejects_kept=max_rejects_kept, reject_file=rej_fh,
                    progress=progress, progress_every=progress_every)
    conn, staging = store.open_import()
    try:
        imp.stage(conn, staging)
        if max_rejects is not None and imp.rejected > max_rejects:
            raise imp.fail(f"{file_path}: {imp.rejected} rejected lines (limit {max_rejects});"
                           f" list {list_name!r} left unchanged")
        read = imp.valid + imp.rejected
        if ratio is not None and read and imp.rejected / read > ratio and imp.accepted:
            raise imp.fail(
                f"{file_path}: {imp.rejected} of {read} lines rejected"
                f" ({100 * imp.rejected / read:.1f}%, more than the {100 * ratio:g}% a {mode}"
                f" import allows; raise it with max_reject_ratio / --max-reject-ratio if the"
                f" file is right); list {list_name!r} left unchanged")
        if imp.accepted == 0 and not allow_empty:
            first = f"; first problem: line {imp.rejects[0].line}: {imp.rejects[0].reason}" \
                if imp.rejects else ""
            raise imp.fail(f"{file_path}: no valid numbers{first}; list {list_name!r} left"
                           " unchanged", line=imp.rejects[0].line if imp.rejects else None)
        imp.report("merging")
        source_name = source if source is not None else file_path.name
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            lid = list_id(conn, list_name)
            merged = staging.merge(lid, mode, (to_ts(expires_at), now, source_name, reason,
                                               evidence))
            added, removed, total, imp.accepted = merged
            conn.execute("UPDATE lists SET imported_at = ?, released_at = ? WHERE id = ?",
                         (now, to_ts(released_at), lid))
            write_audit(conn, actor, "list.import", party_kind="list", party_key=list_name,
                        after={"file": str(file_path), "mode": mode, "lines": imp.lines,
                               "released_at": None if released_at is None
                               else released_at.isoformat(),
                               "accepted": imp.accepted, "rejected": imp.rejected,
                               "added": added, "removed": removed, "total": total})
            version = bump_version(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise imp.fail(f"{file_path}: import into {list_name!r} failed: {exc}") from exc
    finally:
        conn.close()
        if rej_fh is not None:
            rej_fh.close()
    store._notify(version)
    imp.report("done")
    result = ImportResult(
        list_name=list_name, mode=mode, lines=imp.lines, accepted=imp.accepted,
        duplicates=(imp.valid - imp.accepted) + (imp.accepted - added if mode == "add" else 0),
        rejected=imp.rejected, rejects=tuple(imp.rejects), added=added, removed=removed,
        total=total, seconds=time.monotonic() - started, data_version=version,
    )
    logger.info("imported %s into list %s (%s): %d lines, %d accepted, %d rejected, %d added,"
                " %d removed, %.1f s", file_path, list_name, mode, imp.lines, imp.accepted,
                imp.rejected, added, removed, result.seconds)
    return result
