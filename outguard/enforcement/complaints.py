"""Reading complaint and mark files (CSV) into rows the enforcer adds one by one.

Header (case-insensitive, any order; extra columns ignored)::

    callee,caller_id,category,source[,tenant,account,at,note]

``category``: harassment | fraud | advertising | other (骚扰 / 诈骗 / 广告 / 其他 accepted);
``at``: ISO 8601 (naive = UTC) or epoch seconds; empty = now.

12321-style exports are read as they come: Chinese headers (``HEADER_ALIASES``: 被举报号码
-> caller_id, 举报人号码 -> callee, 举报类型 -> category, 举报时间 -> at, 举报内容 -> note,
...) and, without a source column, the source ``12321``.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from outguard.errors import InvalidInput
from outguard.store.base import COMPLAINT_CATEGORIES

logger = logging.getLogger(__name__)

REQUIRED = ("callee", "caller_id", "category", "source")
OPTIONAL = ("tenant", "account", "at", "note")
#: header names of 12321-style exports (and common variants), folded to ours
HEADER_ALIASES = {
    "被举报号码": "caller_id", "被投诉号码": "caller_id", "主叫号码": "caller_id",
    "举报人号码": "callee", "投诉人号码": "callee", "被叫号码": "callee", "用户号码": "callee",
    "举报类型": "category", "投诉类型": "category", "类型": "category",
    "举报时间": "at", "投诉时间": "at", "时间": "at",
    "举报内容": "note", "投诉内容": "note", "备注": "note",
    "来源": "source", "机构": "tenant", "账号": "account", "坐席": "account",
}
#: the source of rows from a file with Chinese headers and no source column
SOURCE_12321 = "12321"
CATEGORY_ALIASES = {
    "骚扰": "harassment", "诈骗": "fraud", "广告": "advertising", "其他": "other",
    "spam": "advertising", "scam": "fraud",
}


@dataclass(frozen=True, slots=True)
class ComplaintRow:
    line: int
    callee: str
    caller_id: str
    category: str
    source: str
    tenant: str | None = None
    account: str | None = None
    at: datetime | None = None
    note: str = ""


def category_of(value: str) -> str:
    """A category name, aliases folded; InvalidInput if unknown."""
    v = value.strip().lower()
    v = CATEGORY_ALIASES.get(value.strip(), CATEGORY_ALIASES.get(v, v))
    if v not in COMPLAINT_CATEGORIES:
        raise InvalidInput(f"category must be one of {', '.join(COMPLAINT_CATEGORIES)}",
                           field="category", value=value)
    return v


def _when(value: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (OverflowError, OSError):
        raise ValueError(f"time {value!r} is out of range") from None
    except ValueError:
        pass
    at = datetime.fromisoformat(value)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def read_rows(path: str | Path) -> Iterator[ComplaintRow | tuple[int, str]]:
    """Rows of the file, or (line, reason) for a row that cannot be read. A file that is
    not UTF-8 CSV at all raises InvalidInput naming the line."""
    line = 0
    try:
        for row in _read_rows(path):
            line = row.line if isinstance(row, ComplaintRow) else row[0]
            yield row
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: after line {line}: not UTF-8 text ({exc.reason})",
                           field="path") from None
    except csv.Error as exc:
        raise InvalidInput(f"{path}: after line {line}: not CSV ({exc})",
                           field="path") from None


def _read_rows(path: str | Path) -> Iterator[ComplaintRow | tuple[int, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise InvalidInput(f"{path}: empty file", field="path")
        names = [HEADER_ALIASES.get(h.strip(), h.strip().lower()) for h in header]
        default_source = ""
        if "source" not in names and any(h.strip() in HEADER_ALIASES for h in header):
            default_source = SOURCE_12321
        missing = [c for c in REQUIRED if c not in names and not (c == "source" and default_source)]
        if missing:
            raise InvalidInput(f"{path}: header lacks {', '.join(missing)} "
                               f"(need {','.join(REQUIRED)})", field="path")
        col = {n: i for i, n in enumerate(names)}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue

            def get(name: str, row: list[str] = row) -> str:
                i = col.get(name)
                return row[i].strip() if i is not None and i < len(row) else ""

            try:
                yield ComplaintRow(
                    line=line, callee=get("callee"), caller_id=get("caller_id"),
                    category=category_of(get("category")),
                    source=get("source") or default_source or "import",
                    tenant=get("tenant") or None, account=get("account") or None,
                    at=_when(get("at")), note=get("note"),
                )
            except InvalidInput as exc:
                yield line, exc.message
            except ValueError as exc:
                yield line, f"bad value: {exc}"
