"""Cluster mode: a caller ID throttled by an open caller-ID health task has its cap
reserved in Redis with the reduced limit, and a call over it is refused as
caller_id_throttled (the cap's cause), on every instance alike."""

from __future__ import annotations

import asyncio

from tests.unit.cluster.test_call_path import (  # noqa: F401  (the cluster fixture)
    Cluster,
    cluster,
    facts,
)


async def test_a_throttled_caller_id_gets_its_reduced_cap_across_instances(
        cluster: Cluster) -> None:
    one = await cluster.start("one")
    two = await cluster.start("two")
    for screener in (one, two):  # one shared store in production; one each here
        await screener.store.open_health_task(
            "+861088886666", reason="connect rate down", figures={}, cap_factor=0.4,
            actor="health:connect_rate_drop")
        await screener.rebuild()
    decisions = await asyncio.gather(*(
        (one if i % 2 else two).screen_reserving(facts(i, account=f"a{i}")) for i in range(12)))
    allowed = [d for d in decisions if d.allowed]
    blocked = [d for d in decisions if not d.allowed]
    assert len(allowed) == 2  # the daily cap of 5 x 0.4
    assert {(d.verdict.rule_id, d.verdict.reason, d.verdict.cause) for d in blocked} == {
        ("caller_daily", "caller_id_throttled", 34)}
    assert all("reduced while caller-ID health task 1 is open" in d.verdict.message
               for d in blocked)
    # another caller ID keeps the whole cap
    others = [await one.screen_reserving(facts(100 + i, caller="01088887777",
                                                account=f"b{i}")) for i in range(5)]
    assert all(d.allowed for d in others)
