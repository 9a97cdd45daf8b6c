"""Every block reason of tests/integration/policies/screening.toml with the SIP response a
phone must get for it: one table for the ARI and the FastAGI paths alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.conftest import Running

ALLOWED = "13800138000"
LISTED = "13900139000"

Setup = Callable[[Running], Awaitable[None]]


async def dnc_listed(og: Running) -> None:
    await og.listed("dnc", "dnc", LISTED)


async def blacklisted(og: Running) -> None:
    await og.listed("blacklist", "blacklist", "+86 139-0013-9000")


async def account_suspended(og: Running) -> None:
    await og.store.create_tenant("t1", "Tenant one")
    await og.store.create_account("a-bad", "t1")
    await og.store.create_suspension(
        "account", "a-bad", reason="complaints", created_by="test",
        ends_at=datetime.now(UTC) + timedelta(hours=24),
    )
    await og.screener.rebuild()


async def nothing(og: Running) -> None:
    await og.screener.rebuild()


FIELDS = ("setup", "number", "kwargs", "expected", "reason")
TABLE = [
    pytest.param(dnc_listed, LISTED, {}, 403, "dnc_listed", id="dnc-403"),
    pytest.param(blacklisted, LISTED, {}, 404, None, id="blacklist-404"),
    pytest.param(account_suspended, ALLOWED, {"account": "a-bad"}, 480, None,
                 id="suspended-account-480"),
    pytest.param(nothing, ALLOWED, {"caller_id": "4008123123"}, 403, None,
                 id="service-number-caller-id-403"),
    pytest.param(nothing, ALLOWED, {"caller_id": "10086"}, 403, "caller_id_service_number",
                 id="carrier-short-number-caller-id-403"),
    # incomplete numbers never pass as "unknown": 484 Address Incomplete (Q.850 28)
    pytest.param(nothing, "88886666", {}, 484, "destination_invalid",
                 id="local-number-without-area-code-484"),
    pytest.param(nothing, "138001380001", {}, 484, "destination_invalid",
                 id="twelve-digit-mobile-484"),
]
