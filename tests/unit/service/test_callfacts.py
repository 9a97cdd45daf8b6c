from __future__ import annotations

from datetime import UTC, datetime

import pytest

from outguard.callfacts import ChannelFacts, build_attempt, parse_purpose
from rules.model import Purpose

AT = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "endpoint"),
    [
        ("PJSIP/agent-00000001", "agent"),
        ("PJSIP/agent-bridge-0000002a", "agent-bridge"),
        ("PJSIP/trunk_a-00000010", "trunk_a"),
        ("SIP/1001-0a1b2c3d", "1001"),
        ("Local/123@ctx-00000001;2", ""),
        ("", ""),
    ],
)
def test_endpoint_is_read_from_the_channel_name(name: str, endpoint: str) -> None:
    assert ChannelFacts("ari", "c1", name, "1", "2").endpoint == endpoint


def facts(**kw: str) -> ChannelFacts:
    base = {"adapter": "ari", "channel_id": "c1", "channel_name": "PJSIP/agent-00000001",
            "dialed": "13800138000", "caller_id": "01088886666"}
    base.update(kw)
    return ChannelFacts(**base)  # type: ignore[arg-type]


def attempt(f: ChannelFacts, mapped: str | None = None, tenant: str | None = None) -> object:
    return build_attempt(f, AT, "d1", lambda e, c, n: mapped, lambda a: tenant, "dflt")


def test_channel_variables_win_over_the_mapping() -> None:
    a = attempt(facts(account="seat-9", tenant="t9"), mapped="seat-1", tenant="t1")
    assert (a.account, a.tenant) == ("seat-9", "t9")  # type: ignore[attr-defined]


def test_mapping_then_the_accounts_tenant() -> None:
    a = attempt(facts(), mapped="seat-1", tenant="t1")
    assert (a.account, a.tenant) == ("seat-1", "t1")  # type: ignore[attr-defined]


def test_unknown_channel_falls_back_to_the_endpoint_and_the_default_tenant() -> None:
    a = attempt(facts())
    assert (a.account, a.tenant) == ("agent", "dflt")  # type: ignore[attr-defined]


def test_purpose_and_campaign_are_carried() -> None:
    a = attempt(facts(purpose="Collection", campaign=" spring "))
    assert a.purpose is Purpose.COLLECTION  # type: ignore[attr-defined]
    assert a.campaign == "spring"  # type: ignore[attr-defined]


def test_unknown_purpose_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown call purpose 'sales'"):
        parse_purpose("sales")
