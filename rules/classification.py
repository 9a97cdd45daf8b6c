"""Classification of canonical numbers (from ``rules.numbers.normalise``).

``segment_info(e164)`` is the allocation-free variant of classify the engine uses;
``prewarm_cn_mobiles()`` classifies every known CN mobile segment up front (~5 s).

``classify(e164)`` returns a ``NumberInfo``: region, line type, province/city (CN names
in Chinese, split as 广东省 + 深圳市; municipalities give 北京市 for both; US states from
the area code by NANPA's table, rules/nanpa_us_area_codes.csv), time zones
and carrier. The geocoder is imported on first use (~0.5 s, ~100 MB). Results are cached
per prefix (the number without its last four digits, plus its length): geocoding, zones
and carriers are prefix data, so after warm-up a lookup costs well under a microsecond.
CN mobiles (the bulk of traffic) use a fixed table over every 7-digit segment (14 MB,
filled on first use of each segment, ~10 us per first use); other numbers an LRU cache
of 131072 prefixes.
"""

from __future__ import annotations

from array import array
from functools import lru_cache
from pathlib import Path
from typing import Any

import phonenumbers as pn

from rules.model import LineType, NumberInfo

__all__ = ["classify", "segment_info", "prewarm_cn_mobiles", "split_cn_place",
           "us_area_code_states", "NANPA_TABLE"]

_LINE_TYPES = {
    pn.PhoneNumberType.MOBILE: LineType.MOBILE,
    pn.PhoneNumberType.FIXED_LINE: LineType.FIXED,
    pn.PhoneNumberType.FIXED_LINE_OR_MOBILE: LineType.FIXED_OR_MOBILE,
    pn.PhoneNumberType.TOLL_FREE: LineType.TOLL_FREE,
    pn.PhoneNumberType.SHARED_COST: LineType.SHARED_COST,
    pn.PhoneNumberType.PREMIUM_RATE: LineType.PREMIUM,
    pn.PhoneNumberType.VOIP: LineType.VOIP,
}


_Info = tuple[int, str | None, LineType, str | None, str | None, tuple[str, ...], str | None, bool]
_UNKNOWN_INFO: _Info = (0, None, LineType.UNKNOWN, None, None, (), None, False)


def _info(t: _Info) -> NumberInfo:
    return NumberInfo("", t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7])


class _CnMobileTable:
    """Classifications of CN mobile segments (号段 +86 1[3-9]x xxxx), filled on use.

    One uint16 per possible 7-digit segment (7M slots, 14 MB once the first CN mobile
    is classified) indexing the interned distinct classifications (a few thousand).
    """

    def __init__(self) -> None:
        self._slots: array[int] | None = None
        self._infos: list[NumberInfo] = [_info(_UNKNOWN_INFO)]  # slot value 0: not yet
        self._ids: dict[_Info, int] = {}

    def get(self, e164: str) -> NumberInfo:
        slots = self._slots
        if slots is None:
            slots = self._slots = array("H", bytes(2 * 7_000_000))
        i = int(e164[3:10]) - 1_300_000
        n = slots[i]
        if n:
            return self._infos[n]
        t = _classify_tuple(e164[:10], 14)
        n = self._ids.get(t, 0)
        if not n:
            if len(self._infos) >= 65535:
                return _info(t)
            n = self._ids[t] = len(self._infos)
            self._infos.append(_info(t))
        slots[i] = n
        return self._infos[n]


_CN_MOBILES = _CnMobileTable()


def prewarm_cn_mobiles() -> int:
    """Classify every CN mobile segment the geocoder knows (~350k, ~4 s of CPU).

    Optional: run once at service start (in a thread or before serving) so that no call
    pays the ~10 us first-use cost of its segment. Returns the number of segments.
    Concurrent use with decide() is safe (a racing segment is just classified twice).
    """
    from phonenumbers.geodata import GEOCODE_DATA

    n = 0
    for key in GEOCODE_DATA:
        if len(key) < 5 or not key.startswith("861") or key[3] not in "3456789" or len(key) > 9:
            continue
        span = 10 ** (9 - len(key))
        base = int(key) * span
        for seg in range(base, base + span):
            _CN_MOBILES.get(f"+{seg}0000")
            n += 1
    return n


def segment_info(e164: str) -> NumberInfo:
    """The classification shared by the number's segment (its ``e164`` field is "").

    The engine's hot path uses this (no allocation); ``classify`` adds the number.
    """
    if ":" in e164:
        return _classify_short(e164)
    if len(e164) == 14 and e164.startswith("+861") and e164[4] in "3456789":
        return _CN_MOBILES.get(e164)
    return _classify_prefix(e164[:-4], len(e164))


def classify(e164: str) -> NumberInfo:
    """Classify a canonical number (from ``normalise``). Cached per segment."""
    seg = segment_info(e164)
    if seg.e164 == e164:
        return seg
    return NumberInfo(
        e164, seg.country_code, seg.region, seg.line_type, seg.province, seg.city,
        seg.timezones, seg.carrier, seg.valid,
    )


@lru_cache(maxsize=131072)
def _classify_prefix(prefix: str, length: int) -> NumberInfo:
    return _info(_classify_tuple(prefix, length))


def _phone_number(e164: str) -> pn.PhoneNumber | None:
    """A PhoneNumber from canonical E.164 without parse() (three times cheaper)."""
    digits = e164[1:]
    for n in (1, 2, 3):
        cc = int(digits[:n])
        if cc in pn.COUNTRY_CODE_TO_REGION_CODE:
            national = digits[n:]
            if not national:
                return None
            zeros = len(national) - len(national.lstrip("0"))
            num = pn.PhoneNumber(country_code=cc, national_number=int(national))
            if zeros:
                num.italian_leading_zero = True
                num.number_of_leading_zeros = zeros if zeros > 1 else None
            return num
    return None


def _classify_tuple(prefix: str, length: int) -> _Info:
    """Classify the representative number ``prefix`` + zeros (same prefix, same length).

    A miss costs about 10 us: no parse(), one number_type(), the "valid" variants of
    the geocoder and carrier lookups.
    """
    num = _phone_number(prefix + "0" * (length - len(prefix)))
    if num is None:
        return _UNKNOWN_INFO
    region = pn.region_code_for_number(num)
    ntype = pn.number_type(num)
    valid = region is not None and ntype != pn.PhoneNumberType.UNKNOWN
    line = _LINE_TYPES.get(ntype, LineType.UNKNOWN)
    if not valid:
        return (num.country_code or 0, region, line, None, None, (), None, False)
    province, city = _place(num, region)
    zones = tuple(z for z in _timezones(num) if z != "Etc/Unknown")
    carrier = _carrier(num, region)
    return (num.country_code or 0, region, line, province, city, zones, carrier, True)


@lru_cache(maxsize=4096)
def _classify_short(code: str) -> NumberInfo:
    cc = int(code[1:].partition(":")[0])
    region = pn.region_code_for_country_code(cc)
    return NumberInfo(
        e164=code,
        country_code=cc,
        region=None if region == "ZZ" else region,
        line_type=LineType.SHORT_CODE,
        valid=True,
    )


_PROVINCES = (
    "北京市 天津市 上海市 重庆市 河北省 山西省 辽宁省 吉林省 黑龙江省 江苏省 浙江省 安徽省 福建省 "
    "江西省 山东省 河南省 湖北省 湖南省 广东省 海南省 四川省 贵州省 云南省 陕西省 甘肃省 青海省 "
    "台湾省 内蒙古自治区 广西壮族自治区 西藏自治区 宁夏回族自治区 新疆维吾尔自治区 "
    "香港特别行政区 澳门特别行政区"
).split()
_SUFFIXES = ("壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "自治区", "省", "市")


def _base(full: str) -> str:
    for suffix in _SUFFIXES:
        if full.endswith(suffix):
            return full[: -len(suffix)]
    return full


# (prefix to look for, canonical province), full names first; mobile segments often use
# short names (新疆乌鲁木齐市, 云南迪庆).
_PROVINCE_PREFIXES = tuple((f, f) for f in _PROVINCES) + tuple((_base(f), f) for f in _PROVINCES)
_MUNICIPALITIES = frozenset(_PROVINCES[:4])


def split_cn_place(text: str) -> tuple[str | None, str | None]:
    """Split a zh geocoder description into (province, city).

    广东省深圳市 -> (广东省, 深圳市); 北京市 -> (北京市, 北京市); 新疆乌鲁木齐市 ->
    (新疆维吾尔自治区, 乌鲁木齐市); 中国 -> (None, None).
    """
    if not text or text == "中国":
        return None, None
    for prefix, province in _PROVINCE_PREFIXES:
        if text.startswith(prefix):
            rest = text[len(prefix):]
            if province in _MUNICIPALITIES:
                return province, rest or province
            return province, rest or None
    return None, text


NANPA_TABLE = Path(__file__).parent / "nanpa_us_area_codes.csv"


@lru_cache(maxsize=1)
def us_area_code_states() -> dict[str, str]:
    """Area code -> state (two letters) from NANPA's table (rules/nanpa_us_area_codes.csv)."""
    table: dict[str, str] = {}
    with NANPA_TABLE.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or line == "area_code,state":
                continue
            npa, _, state = line.partition(",")
            table[npa] = state
    return table


def _place(num: Any, region: str | None) -> tuple[str | None, str | None]:
    """Province and city: Chinese names for CN numbers; for US numbers the state from the
    area code (NANPA's table, never geocoder text, which names only the state for many
    overlay codes), the city from the geocoder; "City, ST" split for other countries."""
    from phonenumbers import geocoder  # heavy: imported on first use only

    if region == "CN":
        text: str = geocoder.description_for_valid_number(num, "zh")
        return split_cn_place(text)
    text = geocoder.description_for_valid_number(num, "en")
    if region == "US":
        state = us_area_code_states().get(str(num.national_number)[:3])
        city = text.rpartition(", ")[0] if ", " in text else None
        return state, city
    if not text or text == geocoder.country_name_for_number(num, "en"):
        return None, None
    city, sep, state = text.rpartition(", ")
    return (state, city) if sep else (None, text)


def _timezones(num: Any) -> tuple[str, ...]:
    from phonenumbers import timezone

    zones: tuple[str, ...] = tuple(timezone.time_zones_for_geographical_number(num))
    return zones


def _carrier(num: Any, region: str | None) -> str | None:
    from phonenumbers import carrier

    name: str = carrier.name_for_valid_number(num, "zh" if region == "CN" else "en")
    return name or None
