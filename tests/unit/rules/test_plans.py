"""rules.plans.is_valid answers what phonenumbers.is_valid_number answers (the reference).

The import fast path decides every CN and NANP number's validity with it (once per block
of 10,000), so any difference would accept or reject numbers phonenumbers does not.
"""

from __future__ import annotations

import random

import phonenumbers as pn
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import plans


def reference(cc: int, nsn: str) -> bool:
    return bool(pn.is_valid_number(pn.PhoneNumber(country_code=cc, national_number=int(nsn))))


@settings(max_examples=2000, deadline=None)
@given(
    st.sampled_from([86, 1, 44, 49, 33, 91, 81, 7, 61, 55, 852, 886, 65, 800, 882, 979]),
    st.sampled_from("123456789"),
    st.text(alphabet="0123456789", min_size=3, max_size=13),
)
def test_is_valid_agrees_with_phonenumbers(cc: int, lead: str, rest: str) -> None:
    nsn = lead + rest
    assert plans.is_valid(cc, nsn) == reference(cc, nsn), f"+{cc} {nsn}"


def test_every_cn_leading_four_digits_agree_with_phonenumbers() -> None:
    """Every 4-digit start of a CN national number (mobile, fixed, service ranges), at the
    lengths the fast path takes (10 and 11 digits) and two around them."""
    rng = random.Random(15)
    for lead in range(1000, 10000):
        for length in (9, 10, 11, 12):
            nsn = f"{lead}{rng.randrange(10 ** (length - 4)):0{length - 4}d}"
            assert plans.is_valid(86, nsn) == reference(86, nsn), f"+86 {nsn}"


def test_every_nanp_area_code_agrees_with_phonenumbers() -> None:
    """Every NANP area code with exchange codes across the range: the region chosen
    (US, CA, the Caribbean by leading digits) and its validity match phonenumbers'."""
    rng = random.Random(15)
    for npa in range(200, 1000):
        for nxx in (200, 211, 555, 911, rng.randrange(200, 1000), rng.randrange(100, 200)):
            nsn = f"{npa}{nxx}{rng.randrange(10_000):04d}"
            assert plans.is_valid(1, nsn) == reference(1, nsn), f"+1 {nsn}"
