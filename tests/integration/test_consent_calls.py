"""The consent ledger on real calls through the sandbox Asterisk (ARI, continue mode):
what a consent exempts, what voids it, and what no consent lifts. Each test places real
SIP calls from the agent phone and reads what reached the carrier and what was logged.

Policy: tests/integration/policies/consent.toml (one `lists` rule over every blocking
list; the consent list exempts that rule).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from outguard.consent import DialplanOptOuts
from outguard.server import OPTOUTS
from outguard.store.consent import ConsentInput
from outguard.testing import sipp
from tests.integration.conftest import Running
from tests.waiting import eventually

pytestmark = pytest.mark.integration

NUMBER = "13800138000"
E164 = "+8613800138000"
OTHER = "13900139000"


@pytest.fixture
def og(outguard_consent: Running) -> Running:
    return outguard_consent


def grant(number: str = NUMBER, **scope: object) -> ConsentInput:
    fields: dict[str, object] = {"tenant": "t1", "list_name": "consent", "evidence": "form-1"}
    fields.update(scope)
    return ConsentInput(number=number, action="grant", source="web_form", channel="api",
                        **fields)  # type: ignore[arg-type]


async def place(og: Running, number: str, **kwargs: object) -> tuple[int | None, list[str]]:
    """One call from the agent phone: (its final SIP code, what the carrier was sent)."""
    with sipp.Carrier(og.pbx.inst, hold_ms=200) as carrier:
        run = await og.call(number, account="a1", tenant="t1", **kwargs)
        invites = carrier.invites()
    await og.released("a1")
    return run.only.final, invites


async def last_logged(og: Running) -> tuple[str, str, str, str]:
    call = (await og.logged())[-1].call
    return call.verdict, call.rule, call.reason, call.campaign


async def test_a_consent_for_one_campaign_does_not_exempt_another_campaigns_call(
    og: Running,
) -> None:
    await og.listed("dnc", "dnc", NUMBER)
    await og.store.record_consent(grant(campaign="spring"))
    await og.screener.rebuild()

    assert await place(og, NUMBER, campaign="spring") == (200, [NUMBER])
    assert await last_logged(og) == ("allow", "", "ok", "spring")

    assert await place(og, NUMBER, campaign="autumn") == (403, [])
    assert await last_logged(og) == ("block", "lists", "dnc_listed", "autumn")
    assert await place(og, NUMBER) == (403, [])  # no campaign: not covered either


async def test_a_litigator_is_refused_whatever_consent_says(og: Running) -> None:
    await og.store.create_list("dnc", "dnc")
    await og.store.add_entries("dnc", [NUMBER, OTHER])
    await og.listed("litigators", "litigator", OTHER)
    for number in (NUMBER, OTHER):  # the same consent, in force, for both
        await og.store.record_consent(grant(number))
    await og.screener.rebuild()

    assert await place(og, NUMBER) == (200, [NUMBER])  # consent lifts the dnc block
    assert await place(og, OTHER) == (403, [])  # but never a litigator's
    verdict, rule, reason, _ = await last_logged(og)
    assert (verdict, rule, reason) == ("block", "lists", "litigator_listed")


async def test_a_reassigned_numbers_disconnect_date_voids_the_consent_given_before(
    og: Running,
) -> None:
    now = datetime.now(UTC)
    await og.listed("dnc", "dnc", NUMBER)
    await og.store.record_consent(grant(at=now - timedelta(days=30), evidence="form-old"))
    await og.screener.rebuild()
    assert await place(og, NUMBER) == (200, [NUMBER])  # the consent exempts

    # the RND says the number was disconnected 10 days ago: the 30-day-old consent was
    # given by the previous holder and is void
    await og.store.add_reassigned("rnd", [(E164, (now - timedelta(days=10)).timestamp())])
    await og.screener.rebuild()
    assert await place(og, NUMBER) == (403, [])
    verdict, rule, reason, _ = await last_logged(og)
    assert (verdict, rule, reason) == ("block", "lists", "dnc_listed")

    # the new holder consents: that consent counts
    await og.store.record_consent(grant(at=now - timedelta(days=1), evidence="form-new"))
    await og.screener.rebuild()
    assert await place(og, NUMBER) == (200, [NUMBER])


async def test_a_cn_refusal_puts_the_number_on_cn_refused_and_the_next_call_is_refused(
    og: Running,
) -> None:
    """The callee of campaign "spring" opts out in the IVR: the revocation is narrowed to
    that campaign (no optout-<tenant> entry), yet a +86 refusal goes on cn_refused for 183
    days, which refuses the next call of any campaign."""
    optouts: DialplanOptOuts = og.app[OPTOUTS]
    assert await place(og, NUMBER, campaign="spring", optout=True) == (200, [NUMBER])
    await eventually(lambda: optouts.recorded == 1, "the opt-out recorded")
    revoke = (await og.store.consent_history(E164))[-1]
    assert (revoke.action, revoke.channel, revoke.tenant, revoke.campaign) == (
        "revoke", "dialplan", "t1", "spring")
    entries = {e.list_name: e for e in await og.store.find_entries(E164)}
    assert set(entries) == {"cn_refused"}
    refused = entries["cn_refused"]
    assert refused.expires_at is not None
    assert (refused.expires_at - revoke.at).days == 183
    await eventually(lambda: og.screener.snapshot is not None
                     and "cn_refused" in og.screener.snapshot.lists, "the refusal in force")

    assert await place(og, NUMBER, campaign="autumn") == (403, [])
    verdict, rule, reason, campaign = await last_logged(og)
    assert (verdict, rule, reason, campaign) == ("block", "lists", "complaint_listed", "autumn")
