"""Reading consent-ledger CSVs and reassigned-number results (all or nothing).

Consent CSV, header (in any order; ``action``, ``number`` and ``source`` required)::

    action,number,tenant,campaign,purpose,list,source,evidence,at,expires_at
    grant,13800138000,acme,,marketing,consent,web_form,form-2026-0042,2026-11-02T10:00+08:00,2027-11-02
    revoke,13800138000,acme,,,,sms,"replied STOP",2026-11-20T09:12+08:00,

Reassigned-number results (FCC Reassigned Numbers Database), header ``number`` and
``disconnected`` (the date the number was permanently disconnected), or the RND's result
form ``number,date,result``: rows whose result is ``yes`` (disconnected since that date)
are kept with that date, ``no`` and ``no data`` rows are skipped. Times are ISO dates or
date-times (no zone: UTC) or epoch seconds.

Every bad line is reported with its line number and nothing is recorded.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from outguard.errors import ImportFailed, InvalidInput, Reject
from outguard.store.consent import ConsentInput, check_consent
from rules.numbers import NumberError, normalise

MAX_REJECTS = 100


def parse_time(value: str) -> datetime | None:
    """An ISO date/date-time (UTC when it has no zone) or epoch seconds; None for ''."""
    value = value.strip()
    if not value:
        return None
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"{value!r} is not an ISO date or time", field="time") from exc
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _rows(path: str | Path, required: tuple[str, ...], label: str | None = None,
          ) -> tuple[dict[str, int], list[tuple[int, Callable[[str], str], str]]]:
    name = label or path
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise InvalidInput(f"{name}: empty file", field="path")
            names = [h.strip().lower() for h in header]
            missing = [c for c in required if c not in names]
            if missing:
                raise InvalidInput(f"{name}:1: header lacks {', '.join(missing)}", field="path")
            col = {n: i for i, n in enumerate(names)}
            out: list[tuple[int, Callable[[str], str], str]] = []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue

                out.append((reader.line_num, _getter(col, row), ",".join(row)[:80]))
            return col, out
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"cannot read {name}: {exc}", field="path") from exc


def _getter(col: dict[str, int], row: list[str]) -> Callable[[str], str]:
    def get(name: str) -> str:
        i = col.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    return get


def _fail(path: str | Path, rejects: list[Reject], total: int) -> ImportFailed:
    first = "; ".join(f"line {r.line}: {r.reason}" for r in rejects[:5])
    return ImportFailed(f"{path}: {total} bad line(s), nothing recorded: {first}",
                        path=str(path), rejects=rejects[:MAX_REJECTS], rejected=total)


def read_consents(path: str | Path, *, region: str, default_list: str = "consent",
                  label: str | None = None) -> list[ConsentInput]:
    """Every line as a checked ConsentInput (channel "import"); ImportFailed listing the
    bad lines when any line is wrong. ``label`` names the file in messages."""
    _, rows = _rows(path, ("action", "number", "source"), label)
    good: list[ConsentInput] = []
    rejects: list[Reject] = []
    for line, get, text in rows:
        try:
            action = get("action").lower()
            item = ConsentInput(
                number=get("number"), action=action, source=get("source"), channel="import",
                tenant=get("tenant") or None, campaign=get("campaign") or None,
                purpose=get("purpose").lower() or None,
                list_name=(get("list") or default_list) if action == "grant" else None,
                evidence=get("evidence"), at=parse_time(get("at")),
                expires_at=parse_time(get("expires_at")),
            )
            good.append(check_consent(item, region))
        except InvalidInput as exc:
            rejects.append(Reject(line, exc.message, text))
    if rejects:
        raise _fail(label or path, rejects, len(rejects))
    return good


def read_reassigned(path: str | Path, *, region: str,
                    label: str | None = None) -> list[tuple[str, float]]:
    """(E.164, disconnect time) per kept line; ImportFailed listing the bad lines."""
    col, rows = _rows(path, ("number",), label)
    path = label or path
    date_col = "disconnected" if "disconnected" in col else "date" if "date" in col else None
    if date_col is None:
        raise InvalidInput(f"{path}:1: header needs a disconnected (or RND date) column",
                           field="path")
    out: list[tuple[str, float]] = []
    rejects: list[Reject] = []
    for line, get, text in rows:
        result = get("result").lower()
        if "result" in col and result != "yes":
            if result in ("no", "no data", "nodata", "no_data"):
                continue
            rejects.append(Reject(line, f"result {result!r} is not yes, no or no data", text))
            continue
        try:
            when = parse_time(get(date_col))
            if when is None:
                raise InvalidInput("no disconnect date", field=date_col)
            out.append((normalise(get("number"), region), when.timestamp()))
        except (InvalidInput, NumberError) as exc:
            rejects.append(Reject(line, getattr(exc, "message", str(exc)), text))
    if rejects:
        raise _fail(path, rejects, len(rejects))
    return out
