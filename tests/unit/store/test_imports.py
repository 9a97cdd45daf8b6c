"""Imports (good, mixed and hostile files; all or nothing) and streamed exports."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest

from outguard.errors import ImportFailed
from outguard.store import ImportProgress, SQLiteStore

OLD = ["+8613800000001", "+8613800000002"]


@pytest.fixture
def dnc(store: SQLiteStore) -> str:
    store.create_list("dnc", "dnc")
    store.add_entries("dnc", OLD)
    return "dnc"


def _numbers(store: SQLiteStore, name: str) -> list[str]:
    return [e.e164 for e in store.iter_entries(name)]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_plain_text_file_replaces_the_list(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    f = _write(tmp_path / "n.txt", b"# numbers\n13800138000\n+86 138-0013-8001\n\n13800138000\n")
    result = store.import_list(dnc, f)
    assert _numbers(store, dnc) == ["+8613800138000", "+8613800138001"]
    assert (result.lines, result.accepted, result.duplicates, result.rejected) == (5, 2, 1, 0)
    assert (result.added, result.removed, result.total) == (2, 2, 2)
    assert store.get_list(dnc).info.imported_at is not None
    assert store.find_entries("+8613800138000")[0].source == "n.txt"


def test_add_mode_keeps_existing_entries_and_counts_them_as_duplicates(
    store: SQLiteStore, dnc: str, tmp_path: Path
) -> None:
    f = _write(tmp_path / "n.txt", b"13800000001\n13800138000\n")
    result = store.import_list(dnc, f, mode="add")
    assert _numbers(store, dnc) == [*OLD, "+8613800138000"]
    assert (result.added, result.duplicates, result.removed) == (1, 1, 0)


def test_csv_with_chinese_header_picks_the_number_column(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    f = _write(tmp_path / "c.csv", "姓名,电话,备注\n张三,13800138000,\"a, b\"\n李四,\"138 0013 8001\",x\n".encode())
    result = store.import_list(dnc, f)
    assert _numbers(store, dnc) == ["+8613800138000", "+8613800138001"]
    assert result.rejected == 0


def test_csv_without_header_uses_the_first_column(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    f = _write(tmp_path / "c.csv", b"13800138000,alice\n13800138001,bob\n")
    store.import_list(dnc, f)
    assert _numbers(store, dnc) == ["+8613800138000", "+8613800138001"]


def test_us_registry_area_code_and_number(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    f = _write(tmp_path / "us.txt", b"201,2345678\r\n212,5550123\r\n20,12345678\r\n")
    result = store.import_list(dnc, f, region="US", max_reject_ratio=1.0)
    assert _numbers(store, dnc) == ["+12012345678", "+12125550123"]
    assert [(r.line, r.reason) for r in result.rejects] == [
        (3, "expected a 3-digit area code and a 7-digit number")]


def test_crlf_bom_and_full_width_digits(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    data = "\ufeff１３８００１３８０００\r\n＋８６ １３８－００１３－８００１\r\n".encode()
    store.import_list(dnc, _write(tmp_path / "fw.txt", data))
    assert _numbers(store, dnc) == ["+8613800138000", "+8613800138001"]


def test_gb18030_file_is_decoded(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    data = "号码,姓名\n１３８００１３８０００,张三\n13800138001,李四\n".encode("gb18030")
    result = store.import_list(dnc, _write(tmp_path / "gb.csv", data))
    assert _numbers(store, dnc) == ["+8613800138000", "+8613800138001"]
    assert result.rejected == 0


def test_mixed_file_reports_every_reject_with_its_line(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    data = b"13800138000\nhello\n12\n13800138001\x00\n\xff\xfe\x80\n13800138002\n"
    rejects_path = tmp_path / "rejects.tsv"
    result = store.import_list(dnc, _write(tmp_path / "m.txt", data), reject_file=rejects_path, max_reject_ratio=1.0)
    assert _numbers(store, dnc) == ["+8613800138000", "+8613800138002"]
    assert [r.line for r in result.rejects] == [2, 3, 4, 5]
    reasons = [r.reason for r in result.rejects]
    assert "letters" in reasons[0] and "NUL" in reasons[2] and "GB18030" in reasons[3]
    assert len(rejects_path.read_text().splitlines()) == 4


def test_five_megabyte_line_is_rejected_without_losing_the_next_line(
    store: SQLiteStore, dnc: str, tmp_path: Path
) -> None:
    data = b"13800138000\n" + b"9" * (5 * 1024 * 1024) + b"\n13800138001\n"
    result = store.import_list(dnc, _write(tmp_path / "long.txt", data), max_reject_ratio=1.0)
    assert _numbers(store, dnc) == ["+8613800138000", "+8613800138001"]
    assert result.rejects[0].line == 2 and "too long" in result.rejects[0].reason
    assert len(result.rejects[0].text) <= 60


def test_binary_junk_fails_and_leaves_the_list(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    junk = _write(tmp_path / "junk.bin", random.Random(1202).randbytes(200_000))  # the same junk every run
    with pytest.raises(ImportFailed, match="no valid numbers") as info:
        store.import_list(dnc, junk)
    assert info.value.rejected > 0 and info.value.path.endswith("junk.bin")
    assert _numbers(store, dnc) == OLD


def test_utf16_file_fails_clearly(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    f = _write(tmp_path / "u16.txt", "13800138000\n".encode("utf-16"))
    with pytest.raises(ImportFailed, match=r"u16.txt: line 1: the file is UTF-16"):
        store.import_list(dnc, f)
    assert _numbers(store, dnc) == OLD


def test_empty_file_never_empties_a_list_unless_asked(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    f = _write(tmp_path / "empty.txt", b"\n# nothing\n")
    with pytest.raises(ImportFailed):
        store.import_list(dnc, f)
    assert _numbers(store, dnc) == OLD
    store.import_list(dnc, f, allow_empty=True)
    assert _numbers(store, dnc) == []


def test_too_many_rejects_fails_the_whole_import(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    f = _write(tmp_path / "m.txt", b"13800138000\nbad\nworse\n")
    with pytest.raises(ImportFailed, match="2 rejected lines"):
        store.import_list(dnc, f, max_rejects=1)
    assert _numbers(store, dnc) == OLD


def test_rejects_kept_in_memory_are_capped_but_all_counted(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    f = _write(tmp_path / "m.txt", b"13800138000\n" + b"x\n" * 5000)
    result = store.import_list(dnc, f, max_rejects_kept=100, max_reject_ratio=1.0)
    assert result.rejected == 5000 and len(result.rejects) == 100


def test_missing_file_fails_with_its_name(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match="nope.txt"):
        store.import_list(dnc, tmp_path / "nope.txt")


def test_interrupted_import_leaves_the_list(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    f = _write(tmp_path / "n.txt", b"".join(b"138%08d\n" % i for i in range(50_000)))

    def interrupt(p: ImportProgress) -> None:
        if p.phase == "reading" and p.lines >= 20_000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.import_list(dnc, f, progress=interrupt, progress_every=10_000)
    assert _numbers(store, dnc) == OLD
    result = store.import_list(dnc, f)  # the store is still usable
    assert result.total == 50_000


def test_progress_is_reported_through_the_callback(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    f = _write(tmp_path / "n.txt", b"".join(b"138%08d\n" % i for i in range(30_000)))
    seen: list[ImportProgress] = []
    store.import_list(dnc, f, progress=seen.append, progress_every=10_000)
    assert [p.lines for p in seen if p.phase == "reading"][:3] == [10_000, 20_000, 30_000]
    assert seen[-1].phase == "done" and seen[-1].bytes_read == seen[-1].total_bytes


def test_import_bumps_the_version_and_notifies(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    seen: list[int] = []
    store.subscribe(seen.append)
    result = store.import_list(dnc, _write(tmp_path / "n.txt", b"13800138000\n"))
    assert seen == [result.data_version] == [store.data_version()]
    assert store.list_audit()[-1].action == "list.import"


def test_exports_stream_csv_and_json(store: SQLiteStore, dnc: str) -> None:
    out = io.StringIO()
    assert store.export_list(dnc, out, "csv") == 2
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("e164,expires_at") and lines[1].startswith("+8613800000001,")
    out = io.StringIO()
    store.export_list(dnc, out, "json")
    assert [row["e164"] for row in json.loads(out.getvalue())] == OLD
    out = io.StringIO()
    store.export_audit(out, "json")
    audit = json.loads(out.getvalue())
    assert audit[-1]["action"] == "list.add" and audit[-1]["after"]["count"] == 2
    out = io.StringIO()
    assert store.export_calls(out, "json") == 0 and json.loads(out.getvalue()) == []


# -- garbage never becomes a number; a bad file never wipes a list -------------------------

@pytest.mark.parametrize(
    ("line", "region"),
    [
        pytest.param(b"17963004961", "CN", id="cn-carrier-prefix-garbage-not-+4961"),
        pytest.param(b"88886666", "CN", id="cn-local-without-area-code"),
        pytest.param(b"138001380001", "CN", id="cn-12-digit-mobile"),
        pytest.param(b"5550123", "US", id="us-7-digit"),
        pytest.param(b"+1 000 555 0123", "US", id="us-area-code-000"),
    ],
)
def test_lines_that_are_not_valid_numbers_are_rejected_never_stored(
    store: SQLiteStore, dnc: str, tmp_path: Path, line: bytes, region: str
) -> None:
    f = _write(tmp_path / "n.txt", b"+86 138 0013 8000\n+12125550123\n" + line + b"\n")
    result = store.import_list(dnc, f, mode="add", region=region)
    assert [r.line for r in result.rejects] == [3]
    assert _numbers(store, dnc) == sorted([*OLD, "+12125550123", "+8613800138000"])


@pytest.mark.parametrize("header", [b"area code,number", b"Area Code,Phone Number",
                                    b'"area_code","number"', b"NPA,Number"])
def test_us_registry_with_its_header_line_is_read_as_area_code_and_number(
    store: SQLiteStore, dnc: str, tmp_path: Path, header: bytes
) -> None:
    f = _write(tmp_path / "us.csv", header + b"\n201,2345678\n212,5550123\n")
    result = store.import_list(dnc, f, region="US")
    assert (result.accepted, result.rejected) == (2, 0)
    assert _numbers(store, dnc) == ["+12012345678", "+12125550123"]


def test_us_registry_format_refuses_a_header_that_is_not_area_code_number(
    store: SQLiteStore, dnc: str, tmp_path: Path
) -> None:
    f = _write(tmp_path / "us.csv", b"name,phone\n201,2345678\n")
    with pytest.raises(ImportFailed, match="not 'area code,number'"):
        store.import_list(dnc, f, fmt="us_registry", region="US")
    assert _numbers(store, dnc) == OLD


def test_a_replace_import_of_mostly_rejected_lines_leaves_the_list_alone(
    store: SQLiteStore, dnc: str, tmp_path: Path
) -> None:
    store.add_entries(dnc, [f"+86136001{i:05d}" for i in range(1000)])
    before = _numbers(store, dnc)
    f = _write(tmp_path / "bad.txt", b"13800138000\n" + b"garbage\n" * 99)
    with pytest.raises(ImportFailed) as info:
        store.import_list(dnc, f, mode="replace")
    message = str(info.value)
    assert "99 of 100 lines rejected" in message and "left unchanged" in message
    assert f"{f}:2: letters in number" in message  # file and line of each reason
    assert info.value.rejected == 99
    assert _numbers(store, dnc) == before


@pytest.mark.parametrize(
    ("bad", "mode", "ratio", "refused"),
    [
        pytest.param(1, "replace", None, False, id="replace-1-percent-passes"),
        pytest.param(2, "replace", None, True, id="replace-2-percent-refused"),
        pytest.param(2, "replace", 0.05, False, id="replace-raised-threshold"),
        pytest.param(50, "add", None, False, id="add-has-no-default-limit"),
        pytest.param(2, "add", 0.01, True, id="add-with-an-explicit-limit"),
    ],
)
def test_reject_threshold(store: SQLiteStore, dnc: str, tmp_path: Path,
                          bad: int, mode: str, ratio: float | None, refused: bool) -> None:
    good = b"".join(f"1360013{i:04d}\n".encode() for i in range(100 - bad))
    f = _write(tmp_path / "n.txt", good + b"x\n" * bad)
    if refused:
        with pytest.raises(ImportFailed, match=f"{bad} of 100 lines rejected"):
            store.import_list(dnc, f, mode=mode, max_reject_ratio=ratio)
        assert _numbers(store, dnc) == OLD
    else:
        result = store.import_list(dnc, f, mode=mode, max_reject_ratio=ratio)
        assert result.rejected == bad


def test_the_release_date_of_the_copy_is_kept(store: SQLiteStore, dnc: str, tmp_path: Path) -> None:
    from datetime import datetime, timezone

    released = datetime(2026, 11, 1, tzinfo=timezone.utc)
    store.import_list(dnc, _write(tmp_path / "n.txt", b"13800138000\n"), released_at=released)
    info = store.get_list(dnc).info
    assert info.released_at == released and info.imported_at is not None
    assert info.imported_at > released
    store.import_list(dnc, _write(tmp_path / "n.txt", b"13800138000\n"))
    assert store.get_list(dnc).info.released_at is None  # a later copy without a date


def test_a_replace_import_rewrites_what_changed_and_keeps_what_did_not(
    store: SQLiteStore, tmp_path: Path
) -> None:
    """The merge: a first import fills the empty list; a replace with the same file
    keeps every row (created_at too); a replace with another reason or source updates
    the rows that stay and removes the ones the file no longer has."""
    store.create_list("reg", "register")
    f = _write(tmp_path / "r.txt", b"13800000001\n13800000002\n13800000003\n")
    first = store.import_list("reg", f, reason="register 1")
    assert (first.added, first.removed, first.total) == (3, 0, 3)
    created = {e.e164: e.created_at for e in store.iter_entries("reg")}
    again = store.import_list("reg", f, reason="register 1")
    assert (again.added, again.removed, again.total) == (0, 0, 3)
    assert {e.e164: e.created_at for e in store.iter_entries("reg")} == created
    f2 = _write(tmp_path / "r2.txt", b"13800000002\n13800000003\n13800000004\n")
    changed = store.import_list("reg", f2, reason="register 2")
    assert (changed.added, changed.removed, changed.total) == (1, 1, 3)
    entries = list(store.iter_entries("reg"))
    assert [(e.e164, e.source, e.reason) for e in entries] == [
        ("+8613800000002", "r2.txt", "register 2"), ("+8613800000003", "r2.txt", "register 2"),
        ("+8613800000004", "r2.txt", "register 2")]
    assert [e.created_at for e in entries[:2]] == [created["+8613800000002"],
                                                   created["+8613800000003"]]
