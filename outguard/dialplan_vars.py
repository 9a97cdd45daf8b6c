"""Every channel variable outguard reads or sets, named once.

The dialplan (``dialplan/outguard.conf``), the ARI app, the FastAGI server and the AMI
listener all use these names; CDRs see the ones outguard sets.
"""

from __future__ import annotations

from collections.abc import Mapping

# Read: who is calling and why (set in the dialplan before outguard runs; all optional).
ACCOUNT = "OUTGUARD_ACCOUNT"
TENANT = "OUTGUARD_TENANT"
PURPOSE = "OUTGUARD_PURPOSE"
CAMPAIGN = "OUTGUARD_CAMPAIGN"
FAIL_MODE = "OUTGUARD_FAIL_MODE"  # closed | open: when outguard gives no verdict
FAIL_CAUSE = "OUTGUARD_FAIL_CAUSE"  # Q.850 cause of a fail-closed hangup

# A global of the dialplan, set once per PBX (by outguard at connect, or in [globals]):
# the PBX's name in cluster mode, empty for an embedded outguard ([outguard-allow] builds
# the decision id from it: outguard.dialplan_pbx).
PBX = "OUTGUARD_PBX"
#: the value outguard last set OUTGUARD_PBX to: a global that still equals it is
#: outguard's own (replaced when the PBX's name changed), else an administrator's
PBX_SET = "OUTGUARD_PBX_SET"

#: Variables ARI should include in every channel snapshot (ari.conf ``channelvars``; the
#: global OUTGUARD_PBX shows there too, so every call checks it)
READ_BY_ARI = (ACCOUNT, TENANT, PURPOSE, CAMPAIGN, FAIL_MODE, FAIL_CAUSE, PBX)

# Set: the verdict.
VERDICT = "OUTGUARD_VERDICT"  # allow | block (the dialplan sets unscreened / failed itself)
REASON = "OUTGUARD_REASON"
RULE = "OUTGUARD_RULE"
CAUSE = "OUTGUARD_CAUSE"
DECISION_ID = "OUTGUARD_DECISION_ID"
MESSAGE = "OUTGUARD_MESSAGE"
SHADOW = "OUTGUARD_SHADOW"
ANNOUNCEMENT = "OUTGUARD_ANNOUNCEMENT"

ALLOW = "allow"
BLOCK = "block"
#: outguard could not decide; the dialplan's failure branch applies the failure policy
FAILED = "failed"
#: let through without a verdict (fail-open)
UNSCREENED = "unscreened"


FAIL_MODES = ("closed", "open")


def failure_policy(channel: Mapping[str, str], default_mode: str,
                   default_cause: int) -> tuple[str, int]:
    """THE failure policy, one rule for the ARI app, the FastAGI server and the dialplan:
    the channel's ``OUTGUARD_FAIL_MODE`` / ``OUTGUARD_FAIL_CAUSE`` decide (the dialplan's
    knob: the only one that also works while outguard is down); a channel that does not
    set them (or sets something else than closed/open, a cause outside 1-127) gets the
    service's ``calls.fail_mode`` / ``calls.fail_cause``. Returns (mode, cause)."""
    mode = (channel.get(FAIL_MODE) or "").strip()
    if mode not in FAIL_MODES:
        mode = default_mode
    raw = (channel.get(FAIL_CAUSE) or "").strip()
    cause = int(raw) if raw.isdigit() and 1 <= int(raw) <= 127 else default_cause
    return mode, cause


# Sent: the dialplan tells outguard that a callee opted out ([outguard-optout] in
# dialplan/outguard.conf): an AMI UserEvent with these headers (``Channel`` is the one
# Asterisk adds: the channel that ran the opt-out).
OPTOUT_EVENT = "OutguardOptOut"
OPTOUT_HEADERS = ("Number", "Tenant", "Campaign", "Purpose", "DecisionId", "Source", "Channel")
