"""Phone number normalisation and classification.

``normalise(raw, default_region)`` returns one canonical string per number:

* Ordinary numbers: E.164, ``"+8613800138000"``. Accepted input: national or
  international form with spaces, dashes, dots and brackets; a leading ``+``, the
  region's international prefix (``00`` in CN, ``011`` in US) or national trunk prefix
  (``0`` in CN, ``1`` in US); full-width digits and punctuation (``１３８``, ``＋``, ``－``,
  ``（）``, ideographic space).
* Short codes (``95588``, ``10086``, ``110``, ``12321``, ``96xxx``) are not E.164 numbers;
  they are written ``"+<country code>:<digits>"``, e.g. ``"+86:95588"``. A short code is
  recognised only when dialled in national form (no ``+``/``00``), is 3-6 digits long and
  phonenumbers' shortnumberinfo deems it a valid short number for the region. The
  canonical form itself is accepted as input (and validated the same way). Lists may hold
  short codes like any number.
* Every number returned is VALID in its numbering plan (phonenumbers ``is_valid_number``:
  an allocated country code, area code / mobile prefix and length), not merely of a
  plausible length: ``88886666`` (a CN local number without its area code), a 12-digit
  "mobile", a 7-digit US local number, ``+1 000 ...`` are refused.
* Everything else raises ``NumberError`` naming the problem: empty, letters, unexpected
  character, too long (more than 15 digits), a local number without its area code, a
  wrong length, or no such area code / range.

The common shapes (CN mobile ``1[3-9]xxxxxxxxx`` except 179, ``+86``/``0086`` forms, CN
fixed ``0xx-xxxxxxxx``, NANP 10 digits and ``1`` + 10 digits, ``+1`` forms, ASCII or
full-width, with separators) go through a fast path of one precompiled regular
expression per region (CN, US) plus a validity check kept per block of 10,000 numbers
(``_valid_block``: a byte per block, the first number of a block checked by
``rules.plans``, phonenumbers' own test compiled once; about 1 microsecond in all). Everything else falls back to
phonenumbers (about 35 microseconds). ``179xx`` is a carrier-selection prefix that
phonenumbers strips, so those strings take the slow path. The fast path agrees with
phonenumbers; tests/unit/rules/test_numbers_property.py checks it with hypothesis.

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

import re
from array import array
from pathlib import Path
from functools import lru_cache
from typing import Any

import phonenumbers as pn
from phonenumbers import shortnumberinfo

from rules import plans
from rules.plans import block_valid as _valid_block
from rules.errors import NumberError
from rules.model import LineType, NumberInfo

__all__ = ["NumberError", "normalise", "normalise_plain_lines", "classify", "segment_info", "prewarm_cn_mobiles", "is_short_code", "to_key", "from_key"]

MAX_DIGITS = 15
_MAX_RAW = 64

_FULLWIDTH = {0xFF10 + i: ord("0") + i for i in range(10)}
_TRANSLATE: dict[int, int | None] = {
    **_FULLWIDTH,
    0xFF0B: ord("+"),  # ＋
    **{ord(c): None for c in " -.()/\t\u00a0\u3000\uff0d\uff0e\uff08\uff09\u2010\u2011\u2012\u2013\u2014\u2212"},
}

# One alternation per region; the group that matched says how to build the result.
# group 1: national significant number after +86/0086/0 (CN); group 2: after +1/1/011 1.
# 179xx is a carrier-selection prefix phonenumbers strips (national_prefix_for_parsing):
# numbers starting 179 go to the slow path.
_CN_MOBILE = r"1(?:[3-68-9]\d|7[0-8])\d{8}"
_CN_FIXED = r"(?:10|2\d)\d{8}|[3-9]\d{9,10}"
_NANP = r"[2-9]\d\d[2-9]\d{6}"
_FAST: dict[str, re.Pattern[str]] = {
    "CN": re.compile(
        rf"(?:\+86|0086)?({_CN_MOBILE})|(?:\+86|0086|0)({_CN_FIXED})|(?:\+1|001)({_NANP})"
    ),
    "US": re.compile(
        rf"(?:\+1|1|0111)?({_NANP})|(?:\+86|01186)({_CN_MOBILE}|{_CN_FIXED})"
    ),
}
_FAST_CC = ("", "+86", "+86", "+1")
_FAST_CC_US = ("", "+1", "+86")
_CANONICAL = re.compile(r"\+([1-9]\d{0,2}):(\d{3,6})")

_LINE_TYPES = {
    pn.PhoneNumberType.MOBILE: LineType.MOBILE,
    pn.PhoneNumberType.FIXED_LINE: LineType.FIXED,
    pn.PhoneNumberType.FIXED_LINE_OR_MOBILE: LineType.FIXED_OR_MOBILE,
    pn.PhoneNumberType.TOLL_FREE: LineType.TOLL_FREE,
    pn.PhoneNumberType.SHARED_COST: LineType.SHARED_COST,
    pn.PhoneNumberType.PREMIUM_RATE: LineType.PREMIUM,
    pn.PhoneNumberType.VOIP: LineType.VOIP,
}


def normalise(raw: str, default_region: str = "CN", home_area_code: str | None = None) -> str:
    """Return the canonical form of ``raw`` (E.164 or ``+cc:shortcode``).

    ``home_area_code`` (e.g. "10" for Beijing, "212" for Manhattan) resolves a local
    number dialled without its area code, as a PBX dial plan does; without it such a
    number is refused. Raises ``NumberError`` with a message naming what is wrong.
    """
    s = raw
    if not (s.isascii() and s.isdigit()):
        if len(s) > _MAX_RAW:
            raise NumberError(f"too long ({len(s)} characters)", raw)
        s = s.strip().translate(_TRANSLATE)
    fast = _FAST.get(default_region)
    if fast is not None:
        m = fast.fullmatch(s)
        if m is not None:
            i = m.lastindex or 0
            cc = _FAST_CC[i] if default_region == "CN" else _FAST_CC_US[i]
            national = m.group(i)
            if _valid_block(cc, national):
                return cc + national
    return _slow(raw, s, default_region, home_area_code)


# Files of bare national numbers, one a line, in the shape the fast path takes first:
# region -> (a chunk of such lines, the country code, the national length).
_PLAIN_LINES: dict[str, tuple[re.Pattern[bytes], str, int]] = {
    region: (re.compile(rb"(?:%s\r?\n)*(?:%s\r?)?" % (shape, shape)), cc, length)
    for region, shape, cc, length in (("CN", _CN_MOBILE.encode(), "+86", 11),
                                      ("US", _NANP.encode(), "+1", 10))
}


def normalise_plain_lines(chunk: bytes, region: str) -> list[str | None] | None:
    """``normalise`` for a chunk of whole lines that are all bare national numbers of the
    fast path's first shape for ``region`` (CN: mobiles, ``13812345678``; US: NANP
    numbers, ``2125550123``), one item per line; None when a line is anything else.

    An item is what ``normalise(line, region)`` returns for that line (the same fast
    path: the same block verdicts), or None where the line's block is not valid: there
    ``normalise`` raises, and the caller asks it for the error. About three times cheaper
    per number than ``normalise``: no per-line regular expression or call.
    """
    shape = _PLAIN_LINES.get(region)
    if shape is None:
        return None
    lines_of, cc, length = shape
    if lines_of.fullmatch(chunk) is None:
        return None
    text = chunk.decode("ascii")
    if "\r" in text:
        text = text.replace("\r", "")
    lines = text.split("\n")
    if not lines[-1]:
        lines.pop()
    table, cut = plans.block_table(cc, length), length - 4
    out: list[str | None] = []
    for line in lines:
        verdict = table[int(line[:cut])] or (1 if _valid_block(cc, line) else 2)
        out.append(cc + line if verdict == 1 else None)
    return out


def _slow(raw: str, s: str, region: str, home_area_code: str | None = None) -> str:
    """Validate the cleaned text ``s`` and hand it to phonenumbers."""
    _check_text(raw, s)
    m = _CANONICAL.fullmatch(s)
    if m is not None:
        region_of_cc = pn.region_code_for_country_code(int(m.group(1)))
        if _short_code(m.group(2), region_of_cc) is None:
            raise NumberError(f"{s!r} is not a valid short number of region {region_of_cc}", raw)
        return s
    if not s.startswith(("+", "0")) and 3 <= len(s) <= 6:
        code = _short_code(s, region)
        if code is not None:
            return code
    if home_area_code and _is_local(s, region):
        local = _with_area_code(s, region, home_area_code)
        if local is not None:
            return local
    try:
        num = pn.parse(s, region)
    except pn.NumberParseException as exc:
        raise NumberError(f"not a number of region {region}: {exc._msg}", raw) from None
    digits = len(str(num.country_code)) + len(str(num.national_number))
    if num.italian_leading_zero:
        digits += max(num.number_of_leading_zeros or 1, 1)
    if digits > MAX_DIGITS:
        raise NumberError(f"too long ({digits} digits; E.164 allows {MAX_DIGITS})", raw)
    if not pn.is_valid_number(num):
        raise NumberError(_invalid_reason(num, s, region), raw)
    return pn.format_number(num, pn.PhoneNumberFormat.E164)


# Subscriber numbers dialled without their area code, as PBX users do locally.
_LOCAL_LENGTHS = {"CN": (7, 8), "US": (7,), "CA": (7,)}
_TRUNK_PREFIX = {"CN": "0", "US": "", "CA": ""}


def _is_local(s: str, region: str) -> bool:
    lengths = _LOCAL_LENGTHS.get(region)
    return lengths is not None and s.isdigit() and len(s) in lengths and s[0] in "23456789"


def _with_area_code(s: str, region: str, area_code: str) -> str | None:
    """The local number ``s`` in the home area, if that makes a valid number."""
    try:
        num = pn.parse(_TRUNK_PREFIX[region] + area_code + s, region)
    except pn.NumberParseException:
        return None
    if not pn.is_valid_number(num):
        return None
    return pn.format_number(num, pn.PhoneNumberFormat.E164)


def _invalid_reason(num: pn.PhoneNumber, s: str, region: str) -> str:
    """Why a parsed number is not valid, in words a PBX administrator acts on."""
    why = pn.is_possible_number_with_reason(num)
    cc = num.country_code or 0
    place = pn.region_code_for_country_code(cc)
    plan = f"the {place} numbering plan" if place != "ZZ" else f"country code +{cc}"
    if cc != pn.country_code_for_region(region) and not s.startswith("+"):
        shown = f"+{cc}{num.national_number}"
        return f"not a valid number of region {region} ({s!r} reads as {shown}, which is not valid)"
    if why == pn.ValidationResult.IS_POSSIBLE_LOCAL_ONLY or _is_local(s, region):
        return (f"{s!r} is a local number without its area code: dial it with the area code"
                f" ({plan} needs the full national number) or set home_area_code in the"
                " policy")
    if why == pn.ValidationResult.TOO_SHORT or why == pn.ValidationResult.INVALID_LENGTH:
        return f"not a possible number of region {region} ({s!r}: wrong length for {plan})"
    if why == pn.ValidationResult.TOO_LONG:
        return f"not a possible number of region {region} ({s!r}: too long for {plan})"
    if why == pn.ValidationResult.INVALID_COUNTRY_CODE:
        return f"not a possible number ({s!r}: no country has code +{cc})"
    return f"not a valid number in {plan} ({s!r}: no such area code, prefix or range)"


def _check_text(raw: str, s: str) -> None:
    if not s:
        raise NumberError("empty number", raw)
    body = s[1:] if s[0] == "+" else s
    for ch in body:
        if not ("0" <= ch <= "9"):
            if ch.isalpha():
                raise NumberError(f"letters in number {raw!r}", raw)
            if ch == ":" and _CANONICAL.fullmatch(s):
                continue
            raise NumberError(f"unexpected character {ch!r} in number {raw!r}", raw)
    if not body:
        raise NumberError("no digits in number", raw)
    if len(body) > MAX_DIGITS + 3:
        raise NumberError(f"too long ({len(body)} digits; E.164 allows {MAX_DIGITS})", raw)


def _short_code(digits: str, region: str) -> str | None:
    cc = pn.country_code_for_region(region)
    if cc == 0:
        return None
    num = pn.PhoneNumber(country_code=cc, national_number=int(digits))
    if digits[0] == "0" or not shortnumberinfo.is_valid_short_number_for_region(num, region):
        return None
    return f"+{cc}:{digits}"


def is_short_code(canonical: str) -> bool:
    return ":" in canonical


def to_key(canonical: str) -> int:
    """An int that identifies the number: E.164 digits, negative for short codes.

    Snapshots store lists as sorted int64 arrays of these keys.
    """
    if ":" in canonical:
        return -int(canonical[1:].replace(":", ""))
    return int(canonical[1:])


def from_key(key: int, short_cc_len: int = 2) -> str:
    """Inverse of ``to_key`` for ordinary numbers; short codes need the country code length."""
    if key >= 0:
        return f"+{key}"
    digits = str(-key)
    return f"+{digits[:short_cc_len]}:{digits[short_cc_len:]}"


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
