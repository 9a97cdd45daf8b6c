"""Files of bare numbers are read a chunk at a time: the same result as line by line.

The default normaliser takes whole chunks of bare national numbers, or of E.164 numbers,
at once (``rules.numbers.normalise_plain_lines``); any other normaliser sees every line. Importing
the same file both ways (chunks of a few bytes, so that every kind of line meets a chunk
boundary) gives the same entries, counts and rejects (line numbers and messages).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import outguard.store.imports as imports
from outguard.errors import ImportFailed
from outguard.store import SQLiteStore
from rules import numbers


def line_by_line(raw: str, region: str) -> str:
    """The default normaliser under another name: the importer reads every line."""
    return numbers.normalise(raw, region)


mobile = st.integers(13_000_000_000, 19_999_999_999).map(str)
e164 = st.one_of(mobile.map(lambda n: "+86" + n),
                st.sampled_from(["+12125550123", "+8614000138000", "+8617963004961",
                                 "+10005550123", "+86\uff11\uff13800138000", "+861062345678"]))
kinds = st.one_of(
    mobile, mobile, mobile, e164, e164, e164,
    st.sampled_from(["14000138000", "17963004961", "1380013800", ""]),  # bad segment, 179, short, blank
    st.sampled_from(["# a comment", "  13800138000  ", "+86 138-0013-8001", "x" * 90]),
    st.sampled_from(["1380013\x008000", "\xff\xfe13800138002"]),  # NUL, undecodable
)


def _import(path: Path, tmp: Path, name: str, **options: object) -> tuple[object, list[str]]:
    store = SQLiteStore(tmp / f"{name}.db")
    try:
        store.create_list("dnc", "dnc")
        try:
            result = store.import_list("dnc", path, max_reject_ratio=1.0, max_line=64,
                                       **options)  # type: ignore[arg-type]
        except ImportFailed as exc:
            return ("failed", str(exc).replace(str(path), "FILE"), exc.rejected), []
        shown = (result.lines, result.accepted, result.duplicates, result.rejected,
                 result.rejects, result.added, result.total)
        return shown, [e.e164 for e in store.iter_entries("dnc")]
    finally:
        store.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(kinds, max_size=60), st.booleans(), st.sampled_from([16, 40, 1 << 20]))
def test_chunks_and_lines_give_the_same_import(rows: list[str], crlf: bool, chunk: int) -> None:
    end = "\r\n" if crlf else "\n"
    data = end.encode().join(
        b"\xff\xfe13800138002" if r.startswith("\xff") else r.encode() for r in rows)
    with tempfile.TemporaryDirectory() as tmp_name, pytest.MonkeyPatch.context() as mp:
        tmp = Path(tmp_name)
        path = tmp / "in.txt"
        path.write_bytes(data)
        mp.setattr(imports, "CHUNK", chunk)
        chunked = _import(path, tmp, "chunked")
        lines = _import(path, tmp, "lines", normalise=line_by_line)
    assert chunked == lines


@pytest.mark.parametrize("prefix", ["", "+86"], ids=["bare", "e164"])
def test_a_big_file_of_bare_numbers_is_read_by_chunks(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      prefix: str) -> None:
    """The lane is taken (counted), and rejects in it keep their line numbers."""
    taken: list[int] = []
    plain = numbers.normalise_plain_lines

    def counted(chunk: bytes, region: str) -> list[str | None] | None:
        got = plain(chunk, region)
        if got is not None:
            taken.append(len(got))
        return got

    monkeypatch.setattr(numbers, "normalise_plain_lines", counted)
    monkeypatch.setattr(imports, "CHUNK", 4096)
    rows = [f"{prefix}139{i:08d}" for i in range(5000)]
    rows[3000] = prefix + "14000138000"  # a segment phonenumbers does not know
    path = tmp_path / "big.txt"
    path.write_text("\n".join(rows) + "\n")
    store = SQLiteStore(tmp_path / "s.db")
    try:
        store.create_list("dnc", "dnc")
        result = store.import_list("dnc", path, max_reject_ratio=1.0)
    finally:
        store.close()
    assert sum(taken) >= 4990  # all but the first line (it chooses the format)
    assert (result.accepted, result.rejected) == (4999, 1)
    assert result.rejects[0].line == 3001
    assert "not a valid number" in result.rejects[0].reason
