"""The fast path of numbers.normalise agrees with phonenumbers (the reference)."""

from __future__ import annotations

import phonenumbers as pn
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from phonenumbers import shortnumberinfo

from rules import numbers
from rules.errors import NumberError


def reference(raw: str, region: str) -> str | None:
    """phonenumbers' answer: E.164 when valid, None when it is not a valid number."""
    try:
        num = pn.parse(raw, region)
    except pn.NumberParseException:
        return None
    if not pn.is_valid_number(num):
        return None
    return pn.format_number(num, pn.PhoneNumberFormat.E164)


def ours(raw: str, region: str) -> str | None:
    try:
        return numbers.normalise(raw, region)
    except NumberError:
        return None


digits = st.text(alphabet="0123456789", min_size=1, max_size=1)
separators = st.sampled_from(["", " ", "-", ".", "\u3000", "\uff0d"])


def spaced(s: str, seps: list[str]) -> str:
    return "".join(c + seps[i % len(seps)] for i, c in enumerate(s)).rstrip(" -.\u3000\uff0d")


@st.composite
def shaped(draw: st.DrawFn) -> tuple[str, str]:
    region = draw(st.sampled_from(["CN", "US"]))
    head = draw(st.sampled_from(["", "+86", "0086", "0", "+1", "1", "001", "011", "0111", "01186"]))
    length = draw(st.integers(min_value=7, max_value=12))
    lead = draw(st.sampled_from("123456789"))
    body = lead + draw(st.text(alphabet="0123456789", min_size=length - 1, max_size=length - 1))
    seps = draw(st.lists(separators, min_size=1, max_size=3))
    text = spaced(head + body, seps)
    if draw(st.booleans()):
        text = text.translate({ord(str(i)): 0xFF10 + i for i in range(10)})
    return text, region


@settings(max_examples=3000, deadline=None)
@given(shaped())
def test_normalise_agrees_with_phonenumbers(case: tuple[str, str]) -> None:
    raw, region = case
    got = ours(raw, region)
    if got is not None and ":" in got:
        return  # short codes are our own extension
    assert got == reference(raw, region)


@st.composite
def cn_mobiles(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(["13", "14", "15", "16", "170", "175", "178", "18", "19"]))
    return head + draw(st.text(alphabet="0123456789", min_size=11 - len(head), max_size=11 - len(head)))


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(["", "+86", "0086", "0"]),
    st.sampled_from(["179", "1179", "1279", "12", "11", "17951", "12593"]),
    st.text(alphabet="0123456789", min_size=4, max_size=11),
)
def test_carrier_selection_prefixes_agree_with_phonenumbers(head: str, lead: str, rest: str) -> None:
    raw = head + lead + rest
    got = ours(raw, "CN")
    if (got is not None and ":" in got) or (got is None and len(raw) > 18):
        return  # short codes are ours; over-long input is refused before phonenumbers
    assert got == reference(raw, "CN")


@settings(max_examples=2000, deadline=None)
@given(cn_mobiles(), st.sampled_from(["", "+86", "0086", "+86 ", "0086-"]))
def test_cn_mobile_fast_path_agrees_with_the_numbering_plan(mobile: str, head: str) -> None:
    expected = reference(head + mobile, "CN")  # None for unallocated segments (140, 154 ...)
    assert ours(head + mobile, "CN") == expected
    if expected is not None:
        assert expected == "+86" + mobile


@settings(max_examples=3000, deadline=None)
@given(st.text(max_size=40), st.sampled_from(["CN", "US", "GB", "DE"]))
def test_normalise_returns_canonical_or_raises_number_error(raw: str, region: str) -> None:
    try:
        got = numbers.normalise(raw, region)
    except NumberError:
        return
    assert got.startswith("+")
    digits = got[1:].replace(":", "")
    assert digits.isdigit() and digits.isascii() and len(digits) <= 15
    assert numbers.normalise(got, region) == got  # canonical forms are fixed points


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="0123456789+-() ", min_size=1, max_size=20), st.sampled_from(["CN", "US"]))
def test_digit_soup_agrees_with_phonenumbers(raw: str, region: str) -> None:
    got = ours(raw, region)
    if got is None or ":" in got:
        return  # our errors are stricter (letters, length); short codes are ours
    assert got == reference(raw, region)


# -- every accepted form of one valid number normalises to the same E.164 ----------------

_FULLWIDTH = {ord(str(i)): 0xFF10 + i for i in range(10)} | {ord("+"): 0xFF0B, ord("-"): 0xFF0D}


@st.composite
def valid_numbers(draw: st.DrawFn) -> tuple[str, str, str]:
    """(region, national significant number, E.164) of a number valid in its plan."""
    region = draw(st.sampled_from(["CN", "US", "GB"]))
    kind = draw(st.sampled_from([pn.PhoneNumberType.MOBILE, pn.PhoneNumberType.FIXED_LINE]))
    example = pn.example_number_for_type(region, kind)
    assert example is not None
    nsn = pn.national_significant_number(example)
    keep = draw(st.integers(min_value=3, max_value=len(nsn) - 4))
    tail = draw(st.text(alphabet="0123456789", min_size=len(nsn) - keep, max_size=len(nsn) - keep))
    candidate = nsn[:keep] + tail
    num = pn.parse("+" + str(example.country_code) + candidate)
    assume(pn.is_valid_number(num))
    return region, candidate, pn.format_number(num, pn.PhoneNumberFormat.E164)


def _forms(region: str, nsn: str, cc: str) -> list[str]:
    """The ways a person or a PBX writes the number (all accepted by normalise)."""
    intl = {"CN": "00", "US": "011", "GB": "00"}[region]
    trunk = {"CN": "0", "US": "1", "GB": "0"}[region]
    national = ("" if region == "CN" and nsn.startswith("1") else trunk) + nsn
    half = len(nsn) // 2
    out = [
        national, f"+{cc}{nsn}", f"+{cc} {nsn}", f"{intl}{cc}{nsn}", f"{intl} {cc} {nsn}",
        f"{national[:half]}-{national[half:]}", f"{national[:half]} {national[half:]}",
        f"({national[:3]}) {national[3:]}", f"+{cc}-{nsn[:half]}-{nsn[half:]}",
        f"{national[:half]}\u3000{national[half:]}", f"  {national}  ",
    ]
    return out + [f.translate(_FULLWIDTH) for f in out]


@settings(max_examples=400, deadline=None)
@given(valid_numbers())
def test_every_accepted_form_normalises_to_the_same_e164(case: tuple[str, str, str]) -> None:
    region, nsn, e164 = case
    cc = e164[1 : len(e164) - len(nsn)]
    for form in _forms(region, nsn, cc):
        assert numbers.normalise(form, region) == e164, form


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="0123456789+- ", min_size=1, max_size=18), st.sampled_from(["CN", "US", "GB"]))
def test_a_number_that_normalises_is_valid_in_its_numbering_plan(raw: str, region: str) -> None:
    got = ours(raw, region)
    if got is None:
        return
    if ":" in got:  # short code: valid short number of its country's main region
        cc, _, code = got[1:].partition(":")
        plan = pn.region_code_for_country_code(int(cc))
        short = pn.PhoneNumber(country_code=int(cc), national_number=int(code))
        assert shortnumberinfo.is_valid_short_number_for_region(short, plan)
        return
    assert pn.is_valid_number(pn.parse(got)), got


@pytest.mark.parametrize(
    ("raw", "region", "words"),
    [
        pytest.param("88886666", "CN", "local number without its area code", id="cn-8-digit-local"),
        pytest.param("8888666", "CN", "local number without its area code", id="cn-7-digit-local"),
        pytest.param("138001380001", "CN", "not a", id="cn-12-digit-mobile"),
        pytest.param("14000138000", "CN", "not a valid number", id="cn-unallocated-mobile-segment"),
        pytest.param("17963004961", "CN", "not a", id="cn-carrier-selection-garbage"),
        pytest.param("5551234", "US", "local number without its area code", id="us-7-digit-local"),
        pytest.param("+1 000 555 1234", "CN", "not a valid number", id="us-area-code-000"),
        pytest.param("(100) 555-1234", "US", "not a", id="us-area-code-100"),
        pytest.param("+1 999 555 1234", "US", "not a valid number", id="us-unassigned-area-code"),
        pytest.param("+86:911", "CN", "not a valid short number", id="short-canonical-not-cn"),
        pytest.param("911", "CN", "not a", id="short-foreign-emergency"),
    ],
)
def test_invalid_or_incomplete_numbers_are_refused_with_a_reason(raw: str, region: str, words: str) -> None:
    with pytest.raises(NumberError, match=words):
        numbers.normalise(raw, region)


@pytest.mark.parametrize(
    ("raw", "region", "area", "expected"),
    [
        pytest.param("88886666", "CN", "10", "+861088886666", id="beijing-8-digit"),
        pytest.param("23456789", "CN", "0755", "+8675523456789", id="area-with-trunk-0"),
        pytest.param("5550123", "US", "212", "+12125550123", id="manhattan-7-digit"),
        pytest.param("13800138000", "CN", "10", "+8613800138000", id="mobile-untouched"),
        pytest.param("010-62345678", "CN", "755", "+861062345678", id="full-number-untouched"),
    ],
)
def test_home_area_code_completes_local_numbers(raw: str, region: str, area: str, expected: str) -> None:
    assert numbers.normalise(raw, region, area.removeprefix("0")) == expected


# -- a chunk of bare numbers at once (the import's fast lane) ------------------------------

plain_cn = st.one_of(cn_mobiles(), st.sampled_from(["14000138000", "17900000000", "19999999999"]))
plain_us = st.builds(lambda a, b, c: f"{a}{b}{c}", st.integers(200, 999), st.integers(200, 999),
                     st.integers(0, 9999).map(lambda n: f"{n:04d}"))


# E.164 lines of the two shapes, and hostile near misses of them: the carrier-selection
# 179, segments phonenumbers does not know, a +1 number that is not NANP, too short or
# too long, full-width digits or plus, separators, a bare number among them, a trailing
# space, the +86 of a fixed line, a NUL
e164_line = st.one_of(
    cn_mobiles().map(lambda n: "+86" + n),
    plain_us.map(lambda n: "+1" + n),
    st.sampled_from(["+8617963004961", "+8614000138000", "+8619999999999", "+10005550123",
                     "+1212555012", "+121255501234", "+861380013800", "+86138001380001",
                     "\uff0b8613800138000", "+86\uff11\uff13800138000", "+86 13800138000",
                     "+86-138-0013-8000", "13800138000", "+8613800138000 ", "+861062345678",
                     "+8613800\x00138000", "++8613800138000", "+"]),
)


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from(["CN", "US"]), st.sampled_from(["bare", "e164", "mixed"]),
       st.booleans(), st.booleans())
def test_plain_lines_agree_with_normalise_line_by_line(data: st.DataObject, region: str,
                                                      lane: str, crlf: bool,
                                                      last_newline: bool) -> None:
    bare_line = plain_cn if region == "CN" else plain_us
    kind = {"bare": bare_line, "e164": e164_line, "mixed": st.one_of(bare_line, e164_line)}
    lines = data.draw(st.lists(kind[lane], max_size=30))
    end = "\r\n" if crlf else "\n"
    chunk = (end.join(lines) + (end if last_newline and lines else "")).encode()
    got = numbers.normalise_plain_lines(chunk, region)
    e164 = all(numbers._E164_LINES.fullmatch(line.encode()) for line in lines)
    bare = all(numbers._PLAIN_LINES[region][0].fullmatch(line.encode()) for line in lines)
    if not (e164 or bare):
        assert got is None  # 179..., a CN shape in a US file, a mix: line by line
        return
    assert got is not None and len(got) == len(lines)
    for line, item in zip(lines, got):
        if item is None:
            with pytest.raises(NumberError):
                numbers.normalise(line, region)
        else:
            assert item == numbers.normalise(line, region)
            assert item == line or not e164  # E.164 already: the line itself


@pytest.mark.parametrize("chunk", [
    b"13800138000\n\n13800138001\n", b"13800138000\n# comment\n", b"+86 13800138000\n",
    b"13800138000 \n", b"138 0013 8000\n", b"1380013800\n", b"13800138000\x00\n",
    b"\xef\xbc\x91" + b"3800138000\n", b"+8613800138000\n13800138000\n",
    b"+8613800138000\n\n", b"+8617963004961\n", b"+861062345678\n",
])
def test_plain_lines_refuse_a_chunk_with_anything_else(chunk: bytes) -> None:
    assert numbers.normalise_plain_lines(chunk, "CN") is None
