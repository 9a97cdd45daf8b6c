"""Cluster mode: only the instance that leads enforcement acts on a crossing; the others
keep the same figures and act when they become the leader."""

from __future__ import annotations

from rules.model import PartyKind
from tests.unit.enforcement.conftest import EnforcerFactory, play_call

BUSY = """
[enforcement.triggers.busy]
metric = "allowed"
scope = "account"
window = "1h"
at_least = 3
action = "suspend"
duration = "1h"
"""


async def test_a_follower_with_the_same_figures_acts_on_nothing_until_it_leads(
    make_enforcer: EnforcerFactory,
) -> None:
    leading = {"follower": False}
    follower = await make_enforcer(BUSY, leads=lambda: leading["follower"])
    for _ in range(3):
        play_call(follower)
    assert follower.risk("account", "a1", window_s=3600).allowed == 3
    assert await follower.evaluate() == []
    assert await follower.store.list_suspensions(party_key="a1") == []
    leading["follower"] = True  # the leader's session ended: this one took the lock
    follower.leadership_changed(True)
    [firing] = await follower.evaluate()
    assert (firing.trigger, firing.kind, firing.key) == ("busy", PartyKind.ACCOUNT, "a1")
    assert len(await follower.store.list_suspensions(party_key="a1")) == 1
