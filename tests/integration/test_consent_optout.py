"""An IVR opt-out on the real Asterisk: the callee's leg runs [outguard-optout] from
dialplan/outguard.conf, outguard hears the AMI UserEvent, records a revocation in the
consent ledger, and the very next call to that number is refused."""

from __future__ import annotations

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


async def test_an_ivr_opt_out_revokes_consent_and_refuses_the_next_call(
    outguard_consent: Running,
) -> None:
    og = outguard_consent
    store = og.store
    # consent on record: the number is on a do-not-call list but the consent exempts it
    await store.create_list("dnc", "dnc")
    await store.add_entries("dnc", [NUMBER])
    await store.record_consent(ConsentInput(
        number=NUMBER, action="grant", source="web_form", channel="api", tenant="t1",
        list_name="consent", evidence="form-1"))
    await og.screener.rebuild()
    optouts: DialplanOptOuts = og.app[OPTOUTS]

    with sipp.Carrier(og.pbx.inst, hold_ms=300) as carrier:
        first = await og.call(NUMBER, account="a1", tenant="t1", optout=True)
        assert carrier.invites() == [NUMBER]
    assert first.only.final == 200  # allowed by consent, answered; the callee opted out
    await eventually(lambda: optouts.recorded == 1, "the opt-out to be recorded")
    history = await store.consent_history(E164)
    assert [e.action for e in history] == ["grant", "revoke"]
    revoke = history[-1]
    assert (revoke.channel, revoke.source, revoke.tenant) == ("dialplan", "ivr", "t1")
    assert "DecisionId" in revoke.evidence
    # the running service's snapshot is refreshed by the store change, not by the test
    await eventually(lambda: og.screener.snapshot is not None
                     and "optout-t1" in og.screener.snapshot.lists,
                     "the snapshot to hold the opt-out")

    with sipp.Carrier(og.pbx.inst, hold_ms=300) as carrier:
        second = await og.call(NUMBER, account="a1", tenant="t1")
        assert carrier.invites() == []
    assert second.only.final == 403
    calls = await og.logged()
    assert [c.call.verdict for c in calls] == ["allow", "block"]
    assert calls[-1].call.reason in ("dnc_listed", "complaint_listed")
    entries = {e.list_name: e for e in await store.find_entries(E164)}
    assert {"optout-t1", "cn_refused"} <= set(entries)
    refused = entries["cn_refused"]
    assert refused.expires_at is not None
    assert (refused.expires_at - revoke.at).days == 183
