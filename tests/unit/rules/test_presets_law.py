"""Rules that hold under every policy, and each preset's caller-ID law.

Party status (suspended, disabled, unverified tenants, accounts and caller IDs) applies
whatever a policy includes; a policy that would let a suspended party call does not load.
Each preset refuses the caller IDs its jurisdiction forbids.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from rules.engine import decide
from rules.errors import PolicyError
from rules.model import CallAttempt, Party, PartyKind, PartyState, Purpose, StoreData
from rules.policy import parse_policy
from rules.policy_types import RuleKind
from rules.snapshot import Snapshot, build_snapshot

from .conftest import NOW, FakeCounters

# (preset, destination, an owned caller ID valid in the preset's country)
PRESETS = [
    ("cn", "13700137000", "+861088886666"),
    ("us-tcpa", "+12125551234", "+12125550100"),
    ("uk-ofcom", "+442079460000", "+442079460001"),
    ("demo", "13700137000", "+861088886666"),
]


def parties(caller: str, **states: PartyState) -> list[Party]:
    until = NOW + timedelta(days=1)
    return [
        Party(PartyKind.TENANT, "t1", states.get("tenant", PartyState.ACTIVE), until=until),
        Party(PartyKind.ACCOUNT, "a1", states.get("account", PartyState.ACTIVE), tenant="t1", until=until),
        Party(PartyKind.CALLER_ID, caller, states.get("caller_id", PartyState.ACTIVE), tenant="t1",
              until=until, verified_until=NOW + timedelta(days=90)),
    ]


def snap_of(text: str, party_rows: list[Party]) -> Snapshot:
    return build_snapshot(parse_policy(text, "p.toml"), StoreData(parties=party_rows), NOW)


def call(snap: Snapshot, dest: str, caller: str) -> tuple[str, str]:
    v = decide(CallAttempt("t1", "a1", caller, dest, NOW, Purpose.MARKETING), snap, FakeCounters())
    return v.rule_id, v.reason


@pytest.mark.parametrize("party", ["tenant", "account", "caller_id"])
@pytest.mark.parametrize("state", [PartyState.SUSPENDED, PartyState.DISABLED, PartyState.UNVERIFIED])
@pytest.mark.parametrize(("preset", "dest", "caller"), PRESETS)
def test_a_suspended_party_never_calls_whatever_the_policy_includes(
    preset: str, dest: str, caller: str, party: str, state: PartyState
) -> None:
    snap = snap_of(f'include = ["{preset}"]\n', parties(caller, **{party: state}))
    assert call(snap, dest, caller)[1] == f"{party}_{state.value}"


def test_a_policy_without_party_status_gets_the_built_in_rule_first() -> None:
    policy = parse_policy('include = ["us-tcpa"]\n', "p.toml")
    first = policy.ordered_rules()[0]
    assert first.kind is RuleKind.PARTY_STATUS and first.id == "party_status"
    assert "built-in" in first.source
    bare = parse_policy("[[rules]]\nid = \"x\"\nkind = \"line_type\"\ndeny = [\"premium\"]\n", "p.toml")
    assert [r.kind for r in bare.ordered_rules()][0] is RuleKind.PARTY_STATUS


def test_disabling_party_status_keeps_the_built_in_rule() -> None:
    text = 'include = ["cn"]\n\n[[rules]]\nid = "party_status"\nenabled = false\n'
    snap = snap_of(text, parties("+861088886666", account=PartyState.SUSPENDED))
    assert call(snap, "13700137000", "+861088886666") == ("party_status", "account_suspended")


@pytest.mark.parametrize(
    ("rule", "key", "words"),
    [
        pytest.param('mode = "shadow"', "mode", "must be enforced", id="shadow"),
        pytest.param('parties = ["account"]', "parties", "tenant or caller_id would keep calling", id="subset"),
        pytest.param('purposes = ["marketing"]', "purposes", "cannot be limited", id="purpose-filter"),
        pytest.param('regions = ["CN"]', "regions", "cannot be limited", id="region-filter"),
        pytest.param('provinces = ["FL"]', "provinces", "cannot be limited", id="province-filter"),
    ],
)
def test_a_party_status_rule_that_lets_a_suspended_party_call_does_not_load(
    rule: str, key: str, words: str
) -> None:
    text = f'include = ["cn"]\n\n[[rules]]\nid = "party_status"\n{rule}\n'
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.toml")
    found = {k: m for _, _, k, m in info.value.as_tuples()}
    assert words in found[f"rules[0].{key}"]


def test_no_list_may_exempt_from_party_status() -> None:
    text = '[lists.vip]\nkind = "allow"\nexempts = ["status"]\n\n[[rules]]\nid = "status"\nkind = "party_status"\n'
    with pytest.raises(PolicyError, match="no list may exempt a number from suspensions"):
        parse_policy(text, "p.toml")


CN_CALLER = "+861088886666"


@pytest.mark.parametrize(
    ("caller", "reason"),
    [
        *[pytest.param(c, "caller_id_service_number", id=f"cn-service-{c}") for c in (
            "10086", "10010", "10000", "12345", "12321", "12315", "12306", "110", "114",
            "95588", "95533", "96110", "400-123-4567")],
        pytest.param("+12125550100", "caller_id_foreign", id="cn-foreign-us-caller-id"),
        pytest.param("+442079460001", "caller_id_foreign", id="cn-foreign-uk-caller-id"),
        pytest.param("", "caller_id_missing", id="cn-missing"),
        pytest.param("13700137000", "caller_id_is_destination", id="cn-callee-own-number"),
        pytest.param("88886666", "caller_id_invalid", id="cn-local-without-area-code"),
    ],
)
def test_cn_preset_refuses_service_foreign_and_spoofed_caller_ids(caller: str, reason: str) -> None:
    extra = [Party(PartyKind.CALLER_ID, c, tenant="t1", verified_until=NOW + timedelta(days=90))
             for c in ("+12125550100", "+442079460001", "+8613700137000")]
    snap = snap_of('include = ["cn"]\n', parties(CN_CALLER) + extra)
    assert call(snap, "13700137000", caller) == ("cn_caller_id", reason)
    assert call(snap, "13700137000", CN_CALLER)[1] != reason  # the tenant's own CN number passes


def test_cn_preset_lets_a_cn_caller_id_call_abroad() -> None:
    snap = snap_of('include = ["cn"]\n', parties(CN_CALLER))
    assert call(snap, "+12125551234", CN_CALLER)[0] != "cn_caller_id"


US_CALLER = "+12125550100"


@pytest.mark.parametrize(
    ("caller", "reason"),
    [
        pytest.param("", "caller_id_missing", id="us-empty-caller-id"),
        pytest.param("   ", "caller_id_missing", id="us-blank-caller-id"),
        pytest.param("+12125551234", "caller_id_is_destination", id="us-callee-own-number"),
        pytest.param("+1 000 555 0100", "caller_id_invalid", id="us-area-code-000"),
        pytest.param("5550100", "caller_id_invalid", id="us-7-digit"),
        pytest.param("anonymous", "caller_id_invalid", id="us-anonymous"),
        pytest.param("911", "caller_id_service_number", id="us-short-code"),
        pytest.param("+13055550100", "caller_id_not_owned", id="us-not-the-tenants-number"),
    ],
)
def test_us_tcpa_preset_refuses_missing_invalid_and_spoofed_caller_ids(caller: str, reason: str) -> None:
    snap = snap_of('include = ["us-tcpa"]\n', parties(US_CALLER))
    assert call(snap, "+12125551234", caller) == ("us_caller_id", reason)
    assert call(snap, "+12125551234", US_CALLER)[0] != "us_caller_id"


@pytest.mark.parametrize(
    ("caller", "reason"),
    [
        pytest.param("", "caller_id_missing", id="uk-empty"),
        pytest.param("+449098790000", "caller_id_service_number", id="uk-premium-09"),
        pytest.param("+448717654321", "caller_id_service_number", id="uk-revenue-sharing-087"),
        pytest.param("+447012345678", "caller_id_service_number", id="uk-personal-070"),
        pytest.param("999", "caller_id_service_number", id="uk-short-code"),
        pytest.param("+442079460000", "caller_id_is_destination", id="uk-callee-own-number"),
    ],
)
def test_uk_ofcom_preset_refuses_what_ofcom_cli_guidance_forbids(caller: str, reason: str) -> None:
    snap = snap_of('include = ["uk-ofcom"]\n', parties("+442079460001"))
    assert call(snap, "+442079460000", caller) == ("uk_cli_valid", reason)
