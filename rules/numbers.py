"""Phone number normalisation.

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

Classification (``classify``, ``segment_info``: region, line type, place, time zones,
carrier) is in ``rules.classification``.
"""

from __future__ import annotations

import re

import phonenumbers as pn
from phonenumbers import shortnumberinfo

from rules import plans
from rules.plans import block_valid as _valid_block
from rules.errors import NumberError

__all__ = ["NumberError", "normalise", "normalise_plain_lines", "is_short_code", "to_key",
           "from_key"]

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


# Files already in E.164, one a line, in the shapes both regions' fast paths take the same
# way (CN mobiles after +86, NANP numbers after +1), mixed as they come.
_E164_SHAPE = rb"\+(?:86%s|1%s)" % (_CN_MOBILE.encode(), _NANP.encode())
_E164_LINES = re.compile(rb"(?:%s\r?\n)*(?:%s\r?)?" % (_E164_SHAPE, _E164_SHAPE))


def normalise_plain_lines(chunk: bytes, region: str) -> list[str | None] | None:
    """``normalise`` for a chunk of whole lines that are all bare national numbers of the
    fast path's first shape for ``region`` (CN: mobiles, ``13812345678``; US: NANP
    numbers, ``2125550123``), or all E.164 numbers of those two shapes (``+8613812345678``,
    ``+12125550123``, in any mix; ``region`` CN or US), one item per line; None when a
    line is anything else.

    An item is what ``normalise(line, region)`` returns for that line (the same fast
    path: the same block verdicts), or None where the line's block is not valid: there
    ``normalise`` raises, and the caller asks it for the error. About three times cheaper
    per number than ``normalise``: no per-line regular expression or call.
    """
    shape = _PLAIN_LINES.get(region)
    if shape is None:
        return None
    lines_of, cc, length = shape
    if lines_of.fullmatch(chunk) is not None:
        table, cut = plans.block_table(cc, length), length - 4
        out: list[str | None] = []
        for line in _lines(chunk):
            verdict = table[int(line[:cut])] or (1 if _valid_block(cc, line) else 2)
            out.append(cc + line if verdict == 1 else None)
        return out
    if _E164_LINES.fullmatch(chunk) is not None:
        return _e164_lines(chunk)
    return None


def _lines(chunk: bytes) -> list[str]:
    """The lines of an ASCII chunk, without their ends (CRLF or LF)."""
    text = chunk.decode("ascii")
    if "\r" in text:
        text = text.replace("\r", "")
    lines = text.split("\n")
    if not lines[-1]:
        lines.pop()
    return lines


def _e164_lines(chunk: bytes) -> list[str | None]:
    """``normalise_plain_lines`` for a chunk of ``_E164_LINES``: the line itself where its
    block is valid (+86: 7 digits after the code, +1: 6), else None."""
    cn, us = plans.block_table("+86", 11), plans.block_table("+1", 10)
    out: list[str | None] = []
    for line in _lines(chunk):
        if line[1] == "8":
            verdict = cn[int(line[3:10])] or (1 if _valid_block("+86", line[3:]) else 2)
        else:
            verdict = us[int(line[2:8])] or (1 if _valid_block("+1", line[2:]) else 2)
        out.append(line if verdict == 1 else None)
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
