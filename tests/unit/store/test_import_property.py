"""Property: an import keeps exactly the lines normalise accepts, or fails and keeps the list."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from outguard.errors import ImportFailed
from outguard.store import SQLiteStore
from rules.numbers import NumberError, normalise

mobile = st.integers(13_000_000_000, 19_999_999_999).map(str)
formatted = st.one_of(
    mobile,
    mobile.map(lambda n: f"+86 {n[:3]}-{n[3:7]}-{n[7:]}"),
    mobile.map(lambda n: "".join(chr(ord(c) + 0xFEE0) for c in n)),  # full-width digits
)
junk = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r,;\t#\x00"),
    max_size=30,
)
lines = st.lists(st.one_of(formatted, junk), max_size=40)


def _expected(rows: list[str]) -> set[str]:
    out = set()
    for row in rows:
        text = row.strip()
        if text:
            try:
                out.add(normalise(text))
            except NumberError:
                pass
    return out


@settings(max_examples=40, deadline=None)
@given(rows=lines, crlf=st.booleans())
def test_import_keeps_exactly_the_valid_numbers(rows: list[str], crlf: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "p.db")
        try:
            store.create_list("dnc", "dnc")
            store.add_entries("dnc", ["+8613700000000"])
            path = Path(tmp) / "in.txt"
            path.write_bytes(("\r\n" if crlf else "\n").join(rows).encode())
            expected = _expected(rows)
            if not expected:
                try:
                    store.import_list("dnc", path, max_reject_ratio=1.0)
                except ImportFailed:
                    pass
                assert [e.e164 for e in store.iter_entries("dnc")] == ["+8613700000000"]
                return
            result = store.import_list("dnc", path, max_reject_ratio=1.0)  # garbage on purpose
            assert {e.e164 for e in store.iter_entries("dnc")} == expected
            assert result.accepted == len(expected)
        finally:
            store.close()
