"""Pure screening decisions: numbers, rules, snapshots. No I/O (except policy file reads).

The service wires it like this::

    policy = load_policy(path)                         # or default_policy()
    snapshot = build_snapshot(policy, store_data, now)  # off the hot path; swap whole
    counters = InMemoryCounters()                      # replay the call log: rebuild()
    counts = CallCounts(counters, live)                # + calls in progress (outguard.live)
    verdict = decide(attempt, snapshot, counts)        # hot path, microseconds
    if verdict.allowed:
        counters.record(tenant, account, verdict.caller_id_e164, verdict.destination_e164, ts)
"""

from rules.classification import classify
from rules.counters import InMemoryCounters
from rules.engine import decide, explain
from rules.errors import NumberError, PolicyError, PolicyIssue, RulesError
from rules.hits import RuleHits
from rules.numbers import normalise
from rules.policy import PolicyHolder, default_policy, load_policy, parse_policy
from rules.snapshot import Snapshot, build_snapshot

__all__ = [
    "InMemoryCounters",
    "NumberError",
    "PolicyError",
    "PolicyHolder",
    "PolicyIssue",
    "RuleHits",
    "RulesError",
    "Snapshot",
    "build_snapshot",
    "classify",
    "decide",
    "default_policy",
    "explain",
    "load_policy",
    "normalise",
    "parse_policy",
]
