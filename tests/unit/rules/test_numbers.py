"""numbers.normalise / classify: every accepted form, every error, short codes."""

from __future__ import annotations

import pytest

from rules import classification, numbers
from rules.errors import NumberError, RulesError
from rules.model import LineType


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        pytest.param("13800138000", "CN", "+8613800138000", id="cn-mobile-plain"),
        pytest.param("138 0013 8000", "CN", "+8613800138000", id="cn-mobile-spaces"),
        pytest.param("138-0013-8000", "CN", "+8613800138000", id="cn-mobile-dashes"),
        pytest.param("138.0013.8000", "CN", "+8613800138000", id="cn-mobile-dots"),
        pytest.param("+86 138 0013 8000", "CN", "+8613800138000", id="cn-mobile-plus86"),
        pytest.param("0086 13800138000", "CN", "+8613800138000", id="cn-mobile-0086"),
        pytest.param("+8613800138000", "US", "+8613800138000", id="e164-any-region"),
        pytest.param("１３８００１３８０００", "CN", "+8613800138000", id="cn-mobile-fullwidth"),
        pytest.param("＋８６　１３８－００１３－８０００", "CN", "+8613800138000", id="fullwidth-plus-dash-space"),
        pytest.param("010-12345678", "CN", "+861012345678", id="cn-fixed-beijing"),
        pytest.param("(010) 1234 5678", "CN", "+861012345678", id="cn-fixed-brackets"),
        pytest.param("0755-12345678", "CN", "+8675512345678", id="cn-fixed-shenzhen"),
        pytest.param("+86 10 12345678", "CN", "+861012345678", id="cn-fixed-plus86"),
        pytest.param("400-123-4567", "CN", "+864001234567", id="cn-400"),
        pytest.param("(212) 555-1234", "US", "+12125551234", id="us-10-digit"),
        pytest.param("1 212 555 1234", "US", "+12125551234", id="us-1-plus-10"),
        pytest.param("+1 212 555 1234", "CN", "+12125551234", id="us-from-cn"),
        pytest.param("011 86 13800138000", "US", "+8613800138000", id="us-international-prefix"),
        pytest.param("+44 20 7946 0000", "CN", "+442079460000", id="uk-slow-path"),
        pytest.param("95588", "CN", "+86:95588", id="short-bank"),
        pytest.param("10086", "CN", "+86:10086", id="short-carrier"),
        pytest.param("110", "CN", "+86:110", id="short-police"),
        pytest.param("12321", "CN", "+86:12321", id="short-report-centre"),
        pytest.param("+86:95588", "CN", "+86:95588", id="short-canonical-roundtrip"),
    ],
)
def test_normalise_accepts(raw: str, region: str, expected: str) -> None:
    assert numbers.normalise(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("   ", "empty", id="blank"),
        pytest.param("1380013800a", "letters", id="letters"),
        pytest.param("call me", "letters", id="words"),
        pytest.param("1234567890123456789", "too long", id="too-long"),
        pytest.param("138#0013", "unexpected character", id="hash"),
        pytest.param("+", "no digits", id="plus-only"),
        pytest.param("+86 12", "not a possible number", id="too-short"),
        pytest.param("1" * 80, "too long", id="huge-input"),
    ],
)
def test_normalise_rejects_with_a_clear_message(raw: str, words: str) -> None:
    with pytest.raises(NumberError, match=words) as info:
        numbers.normalise(raw, "CN")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, RulesError)


@pytest.mark.parametrize(
    ("e164", "line", "province", "city", "region"),
    [
        pytest.param("+8613800138000", LineType.MOBILE, "北京市", "北京市", "CN", id="cn-mobile-beijing"),
        pytest.param("+8675512345678", LineType.FIXED, "广东省", "深圳市", "CN", id="cn-fixed-shenzhen"),
        pytest.param("+864001234567", LineType.SHARED_COST, None, None, "CN", id="cn-400"),
        pytest.param("+86:95588", LineType.SHORT_CODE, None, None, "CN", id="cn-short-code"),
        pytest.param("+12125551234", LineType.FIXED_OR_MOBILE, "NY", "New York", "US", id="us-new-york"),
    ],
)
def test_classify(e164: str, line: LineType, province: str | None, city: str | None, region: str) -> None:
    info = classification.classify(e164)
    assert (info.e164, info.line_type, info.province, info.city, info.region) == (
        e164, line, province, city, region,
    )


def test_classify_gives_zones_and_carrier() -> None:
    info = classification.classify("+8613800138000")
    assert info.timezone == "Asia/Shanghai"
    assert info.carrier == "中国移动"
    assert info.valid
    assert info.national == "13800138000"


def test_multi_zone_number_has_no_single_zone() -> None:
    info = classification.classify("+18005551234")
    assert len(info.timezones) > 1
    assert info.timezone is None


def test_short_code_info() -> None:
    info = classification.classify("+86:10086")
    assert info.national == "10086"
    assert info.timezones == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("广东省深圳市", ("广东省", "深圳市"), id="province-city"),
        pytest.param("北京市", ("北京市", "北京市"), id="municipality"),
        pytest.param("新疆维吾尔自治区乌鲁木齐市", ("新疆维吾尔自治区", "乌鲁木齐市"), id="autonomous-region"),
        pytest.param("中国", (None, None), id="country-only"),
        pytest.param("", (None, None), id="empty"),
    ],
)
def test_split_cn_place(text: str, expected: tuple[str | None, str | None]) -> None:
    assert classification.split_cn_place(text) == expected


@pytest.mark.parametrize("canonical", ["+8613800138000", "+12125551234", "+86:95588"])
def test_keys_round_trip(canonical: str) -> None:
    assert numbers.from_key(numbers.to_key(canonical)) == canonical
