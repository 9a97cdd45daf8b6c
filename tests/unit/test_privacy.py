"""Masking: one setting, every output; a masked number keeps every digit position."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outguard import privacy
from outguard import views
from outguard.config import ApiConfig, Settings


@pytest.fixture(autouse=True)
def _masking_on() -> Iterator[None]:
    before = privacy.showing_numbers()
    privacy.show_numbers(False)
    yield
    privacy.show_numbers(before)


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        pytest.param("+8613800138000", "+86138****8000", id="cn-mobile-e164"),
        pytest.param("13800138000", "138****8000", id="cn-mobile-national"),
        pytest.param("+12125551234", "+12125**1234", id="us-e164"),
        pytest.param("138-0013-8000", "138-****-8000", id="raw-with-dashes-kept"),
        pytest.param("+86:95588", "+86:95588", id="short-code-bank"),
        pytest.param("+86:110", "+86:110", id="short-code-police"),
        pytest.param("12345678", "12****78", id="eight-digits"),
        pytest.param("110", "1*0", id="three-digits"),
        pytest.param("12", "12", id="two-digits"),
        pytest.param("anonymous", "anonymous", id="no-digits"),
    ],
)
def test_mask_examples(number: str, shown: str) -> None:
    assert privacy.mask(number) == shown


def _digit_slots(text: str) -> int:
    return sum(1 for c in text if c.isdigit() or c == "*")


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="0123456789+-: ()abc\u3000", max_size=30))
def test_a_masked_number_never_has_more_or_fewer_digits(number: str) -> None:
    out = privacy.masked(number)
    assert len(out) == len(number)
    assert _digit_slots(out) == sum(1 for c in number if c.isdigit()) + number.count("*")
    for a, b in zip(number, out, strict=True):
        assert a == b or (a.isdigit() and b == "*")  # a digit is shown in place or starred


@settings(max_examples=500, deadline=None)
@given(st.from_regex(r"\+[1-9][0-9]{9,14}", fullmatch=True))
def test_masked_e164_keeps_country_code_and_last_four(number: str) -> None:
    out = privacy.masked(number)
    assert out[:6] == number[:6] and out[-4:] == number[-4:]
    assert "*" in out


def test_one_setting_drives_logs_and_api_alike() -> None:
    shown = Settings(api=ApiConfig(show_numbers=True))
    privacy.configure(shown)
    assert privacy.mask("+8613800138000") == "+8613800138000"
    assert views.masker(shown.api.show_numbers)("+8613800138000") == "+8613800138000"
    hidden = Settings()
    privacy.configure(hidden)
    assert privacy.mask("+8613800138000") == "+86138****8000"
    assert views.masker(hidden.api.show_numbers)("+8613800138000") == "+86138****8000"
