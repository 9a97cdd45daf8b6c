"""phonenumbers' validity test, with its metadata compiled once per region and length.

``is_valid(cc, nsn)`` answers exactly what ``phonenumbers.is_valid_number`` answers for
the number ``+<cc><nsn>`` (``nsn`` a national significant number without leading zeros),
from the same metadata, in about a tenth of the time: phonenumbers looks every pattern up
in ``re``'s cache and walks the number types one call at a time (~27 us); here each
(region, length) has its patterns joined into one compiled alternation.

What phonenumbers does, and what this mirrors step by step:

* the region: the country code's only region; for shared codes (NANP), the first region
  in ``COUNTRY_CODE_TO_REGION_CODE`` order whose ``leading_digits`` match the start of the
  number, or, for a region without ``leading_digits``, whose number types know it;
* valid for that region: the general description matches (its possible lengths, then its
  pattern, whole), and one of the type descriptions matches (premium rate, toll free,
  shared cost, VoIP, personal, pager, UAN, voicemail, fixed line, and mobile unless the
  region's mobile and fixed-line patterns are the same), each with its possible lengths
  when it lists any.

tests/unit/rules/test_plans.py checks the equivalence against phonenumbers itself over
generated numbers of every length and leading digit of the plans the import fast path
serves (CN, NANP) and of other countries.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers as pn
from phonenumbers.phonemetadata import PhoneMetadata, PhoneNumberDesc

__all__ = ["block_table", "block_valid", "is_valid"]

_Matchers = tuple["re.Pattern[str] | None", "re.Pattern[str] | None"]


def _pattern(desc: PhoneNumberDesc | None, length: int) -> str | None:
    """The desc's pattern if a number of ``length`` digits can match it (as
    ``phonenumberutil._is_number_matching_desc``), else None."""
    if desc is None or not desc.national_number_pattern:
        return None
    if desc.possible_length and length not in desc.possible_length:
        return None
    return desc.national_number_pattern


def _metadata(region: str, cc: int) -> PhoneMetadata | None:
    """phonenumbers' ``metadata_for_region_or_calling_code``."""
    if region == "001":  # non-geographic entities (+800, +882 ...)
        return PhoneMetadata.metadata_for_nongeo_region(cc)
    return PhoneMetadata.metadata_for_region(region)


@lru_cache(maxsize=None)
def _matchers(region: str, cc: int, length: int) -> _Matchers:
    """(general pattern, the types' patterns as one alternation) for ``length`` digits;
    None where nothing of that length can match."""
    md = _metadata(region, cc)
    if md is None:
        return None, None
    types = [md.premium_rate, md.toll_free, md.shared_cost, md.voip, md.personal_number,
             md.pager, md.uan, md.voicemail, md.fixed_line]
    if not md.same_mobile_and_fixed_line_pattern:
        types.append(md.mobile)
    general = _pattern(md.general_desc, length)
    alternatives = [p for d in types if (p := _pattern(d, length)) is not None]
    if general is None or not alternatives:
        return None, None
    return re.compile(general), re.compile("|".join(f"(?:{p})" for p in alternatives))


def _known(region: str, cc: int, nsn: str) -> bool:
    """phonenumbers' ``_number_type_helper(nsn, metadata) != UNKNOWN``."""
    general, types = _matchers(region, cc, len(nsn))
    return (general is not None and types is not None and general.fullmatch(nsn) is not None
            and types.fullmatch(nsn) is not None)


@lru_cache(maxsize=None)
def _leading(region: str) -> re.Pattern[str] | None:
    md = PhoneMetadata.metadata_for_region(region)
    return None if md is None or md.leading_digits is None else re.compile(md.leading_digits)


def _region(cc: int, nsn: str) -> str | None:
    """phonenumbers' ``region_code_for_number``."""
    regions = pn.COUNTRY_CODE_TO_REGION_CODE.get(cc)
    if not regions:
        return None
    if len(regions) == 1:
        return regions[0]
    for region in regions:
        if PhoneMetadata.metadata_for_region(region) is None:
            continue
        leading = _leading(region)
        if leading is not None:
            if leading.match(nsn):
                return region
        elif _known(region, cc, nsn):
            return region
    return None


def is_valid(cc: int, nsn: str) -> bool:
    """``phonenumbers.is_valid_number(PhoneNumber(cc, int(nsn)))`` for a national
    number ``nsn`` (digits, not starting with 0)."""
    region = _region(cc, nsn)
    if region is None or _metadata(region, cc) is None:
        return False
    if region != "001" and pn.country_code_for_valid_region(region) != cc:
        return False
    return _known(region, cc, nsn)


#: verdicts of the fast path's blocks, one byte per block (0 not yet known, 1 valid,
#: 2 invalid) in a table per (country code, national length): 10**(length - 4) bytes,
#: allocated on first use (10 MB for CN's 11-digit numbers, 1 MB for the others). A
#: table, not an LRU cache: a list spread over every CN mobile segment (~700k blocks)
#: evicted a 262k-entry cache over and over.
_BLOCKS: dict[tuple[str, int], bytearray] = {}


def block_valid(cc: str, national: str) -> bool:
    """Whether ``cc`` + ``national`` is valid in its numbering plan, from the verdict of
    its block (the numbers that differ only in their last four digits).

    For the fast-path shapes (CN mobile, CN fixed, NANP) phonenumbers' validity patterns
    constrain at most the digits before the last four (the subscriber digits are free), so
    one check per block is exact (tests/unit/rules/test_numbers_property.py); the check is
    ``rules.plans.is_valid``, phonenumbers' own test with its patterns compiled once
    (tests/unit/rules/test_plans.py).
    """
    table = block_table(cc, len(national))
    block = int(national[:-4])
    verdict = table[block]
    if not verdict:
        verdict = table[block] = 1 if is_valid(int(cc[1:]), national[:-4] + "0000") else 2
    return verdict == 1


def block_table(cc: str, length: int) -> bytearray:
    """The verdicts of the blocks of ``cc`` numbers of ``length`` national digits."""
    table = _BLOCKS.get((cc, length))
    if table is None:
        table = _BLOCKS.setdefault((cc, length), bytearray(10 ** (length - 4)))
    return table
