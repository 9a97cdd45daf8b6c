"""Every channel variable outguard reads or sets, named once.

The dialplan (``dialplan/outguard.conf``), the ARI app, the FastAGI server and the AMI
listener all use these names; CDRs see the ones outguard sets.
"""

from __future__ import annotations

# Read: who is calling and why (set in the dialplan before outguard runs; all optional).
ACCOUNT = "OUTGUARD_ACCOUNT"
TENANT = "OUTGUARD_TENANT"
PURPOSE = "OUTGUARD_PURPOSE"
CAMPAIGN = "OUTGUARD_CAMPAIGN"
FAIL_MODE = "OUTGUARD_FAIL_MODE"

#: Variables ARI should include in every channel snapshot (ari.conf ``channelvars``).
READ_BY_ARI = (ACCOUNT, TENANT, PURPOSE, CAMPAIGN, FAIL_MODE)

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
