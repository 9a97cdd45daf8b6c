"""The fast path of numbers.normalise agrees with phonenumbers (the reference)."""

from __future__ import annotations

import phonenumbers as pn
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import numbers
from rules.errors import NumberError


def reference(raw: str, region: str) -> str | None:
    """phonenumbers' answer: E.164 when possible, None when it is not a number."""
    try:
        num = pn.parse(raw, region)
    except pn.NumberParseException:
        return None
    if not pn.is_possible_number(num):
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
def test_cn_mobile_fast_path_is_e164(mobile: str, head: str) -> None:
    assert numbers.normalise(head + mobile, "CN") == "+86" + mobile
    assert reference(head + mobile, "CN") == "+86" + mobile


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
