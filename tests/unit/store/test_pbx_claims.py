"""One PBX name, one Asterisk: claims in the store (both engines), as targets make them
when they connect (``outguard.pbx_claims``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from outguard.errors import StoreError
from outguard.pbx_claims import PbxClaims, PbxConflict
from outguard.store import SQLiteStore
from outguard.store.aio import AsyncStore

E1, E2 = "02:00:00:00:00:01", "02:00:00:00:00:02"


class Clock:
    def __init__(self) -> None:
        self.t = 1_764_000_000.0

    def __call__(self) -> float:
        return self.t


def test_a_name_is_one_asterisks_until_its_claim_lapses(store: SQLiteStore) -> None:
    now = 1000.0
    assert store.claim_pbx("bj-1", E1, "a:8470", "ari", now, now - 30) is None
    assert store.claim_pbx("bj-1", E1, "b:8470", "ami", now + 1, now - 29) is None  # same box
    held = store.claim_pbx("bj-1", E2, "c:8470", "ari", now + 2, now - 28)
    assert held == (E1, "b:8470", "ami", now + 1)  # another box: refused, the holder named
    assert store.claim_pbx("sh-1", E2, "c:8470", "ari", now + 2, now - 28) is None
    # nobody renewed bj-1 for the lease: another Asterisk takes the name
    assert store.claim_pbx("bj-1", E2, "c:8470", "ari", now + 40, now + 10) is None
    assert store.claim_pbx("bj-1", E1, "a:8470", "ari", now + 41, now + 11) == (
        E2, "c:8470", "ari", now + 40)
    # a target's own claim follows its Asterisk when that is replaced (same instance, kind)
    assert store.claim_pbx("bj-1", E1, "c:8470", "ari", now + 42, now + 12) is None


@pytest.fixture
def claims_on(store: SQLiteStore) -> Callable[[str], PbxClaims]:
    clock = Clock()
    aio = AsyncStore(store)

    def make(instance: str) -> PbxClaims:
        return PbxClaims(aio, instance, lease_s=30.0, clock=clock)

    return make


async def test_a_second_asterisk_under_a_claimed_name_is_refused_naming_both(
    claims_on: Callable[[str], PbxClaims], caplog: pytest.LogCaptureFixture,
) -> None:
    one, two = claims_on("og-a:8470"), claims_on("og-b:8470")
    await one.claim("bj-1", "ari", E1, "http://10.0.0.1:8088/ari")
    with caplog.at_level(logging.ERROR), pytest.raises(PbxConflict) as err:
        await two.claim("bj-1", "ami", E2, "10.0.0.9:5038")
    text = str(err.value)
    for fragment in ["pbx 'bj-1'", "ami target at 10.0.0.9:5038", E2, "instance og-a:8470",
                     "ari target", E1, "give each its own pbx name", "not used"]:
        assert fragment in text
    assert two.conflicts == {("bj-1", "ami"): text} and two.refused == {"bj-1": 1}
    assert [r.getMessage() for r in caplog.records] == [text]  # logged once ...
    with pytest.raises(PbxConflict):
        await two.claim("bj-1", "ami", E2, "10.0.0.9:5038")
    assert len(caplog.records) == 1 and two.refused == {"bj-1": 2}  # ... counted each time
    await two.claim("bj-1", "ami", E1, "10.0.0.1:5038")  # the same Asterisk: welcome
    assert two.conflicts == {}


async def test_the_ari_and_ami_targets_of_one_name_must_reach_one_asterisk(
    claims_on: Callable[[str], PbxClaims],
) -> None:
    mine = claims_on("og-a:8470")
    await mine.claim("bj-1", "ari", E1, "http://10.0.0.1:8088/ari")
    with pytest.raises(PbxConflict, match=r"this instance \(og-a:8470\)'s ari target"):
        await mine.claim("bj-1", "ami", E2, "10.0.0.2:5038")


async def test_a_renewal_refused_drops_the_target_and_a_disconnected_one_lapses(
    claims_on: Callable[[str], PbxClaims], store: SQLiteStore,
) -> None:
    one, two = claims_on("og-a:8470"), claims_on("og-b:8470")
    dropped: list[str] = []

    async def drop() -> None:
        dropped.append("two")

    up = {"one": True}
    await one.claim("bj-1", "ari", E1, "x", connected=lambda: up["one"])
    await one.renew()  # connected: renewed
    up["one"] = False
    await one.renew()  # disconnected: no longer renewed; the lease runs out
    assert one.clock is two.clock
    two.clock.t += 31  # type: ignore[attr-defined]
    await two.claim("bj-1", "ari", E2, "y", drop=drop)
    # one reconnects to E1 (another box) while two holds the name: refused
    up["one"] = True
    with pytest.raises(PbxConflict):
        await one.claim("bj-1", "ari", E1, "x", connected=lambda: up["one"])
    # two lapses (its instance stalled), one takes the name, two's renewal is refused
    store.claim_pbx("bj-1", E1, "og-a:8470", "ari", two.clock() + 31, two.clock() + 1)
    await two.renew()
    assert dropped == ["two"] and ("bj-1", "ari") in two.conflicts


async def test_one_stasis_application_on_one_asterisk_is_one_instances(
    claims_on: Callable[[str], PbxClaims],
) -> None:
    one, two = claims_on("og-a:8470"), claims_on("og-b:8470")
    await one.claim("bj-1", "ari", E1, "http://10.0.0.1:8088/ari")
    await one.claim_app("bj-1", E1, "outguard", "http://10.0.0.1:8088/ari")
    await two.claim("bj-1", "ari", E1, "http://10.0.0.1:8088/ari")  # the same Asterisk
    with pytest.raises(PbxConflict) as err:
        await two.claim_app("bj-1", E1, "outguard", "http://10.0.0.1:8088/ari")
    for fragment in ["Stasis application 'outguard'", E1, "instance og-a:8470",
                     "an application of its own"]:
        assert fragment in str(err.value)
    await two.claim_app("bj-1", E1, "outguard-b", "http://10.0.0.1:8088/ari")
    await one.claim_app("bj-1", E1, "outguard", "http://10.0.0.1:8088/ari")  # its own
    await one.claim_app("bj-1", E2, "outguard", "http://10.0.0.2:8088/ari")  # another box


async def test_a_store_that_cannot_answer_lets_the_target_be_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    inner = SQLiteStore(tmp_path / "og.db")

    def refused(*args: object) -> None:
        raise StoreError("store write failed: connection refused")

    monkeypatch.setattr(inner, "claim_pbx", refused)
    aio = AsyncStore(inner)
    try:
        claims = PbxClaims(aio, "og-a:8470")
        with caplog.at_level(logging.WARNING):
            await claims.claim("bj-1", "ari", E1, "x")
        assert "cannot check its claim" in caplog.text and claims.conflicts == {}
    finally:
        await aio.aclose()


async def test_a_name_another_instance_holds_live_for_this_asterisk_is_in_use_elsewhere(
    claims_on: Callable[[str], PbxClaims],
) -> None:
    """What OUTGUARD_PBX's owner check asks (``DialplanPbx.settle``): is a name another
    instance's live claim for this very Asterisk?"""
    a, b = claims_on("og-a:8470"), claims_on("og-b:8470")
    await a.claim("sh-1", "ami", E1, "10.0.0.1:5038")
    assert "og-a:8470" in await b.live_elsewhere("sh-1", E1)  # one Asterisk, two names
    assert await b.live_elsewhere("sh-1", E2) == ""  # another Asterisk's name
    assert await a.live_elsewhere("sh-1", E1) == ""  # its own old name (renamed here)
    assert await b.live_elsewhere("bj-9", E1) == ""  # nobody's
    a.clock.t += 31  # type: ignore[attr-defined]
    assert await b.live_elsewhere("sh-1", E1) == ""  # lapsed
