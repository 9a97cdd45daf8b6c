"""What an adapter knows about a new outbound channel, and the one place that turns it into
a ``CallAttempt`` (the ARI app and the FastAGI server share it)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from outguard.live import DEFAULT_PBX
from rules.model import CallAttempt, Purpose

_ENDPOINT = re.compile(r"^[A-Za-z0-9]+/([^-/@;]+(?:-[^-/@;]+)*?)(?:-[0-9a-f]{8})?(?:;\d)?$")

#: resolve_account(endpoint, channel_name, caller_id) -> account id from the store's mapping
AccountResolver = Callable[[str, str, str], "str | None"]
#: tenant_of(account) -> the account's tenant, if the store knows the account
TenantOf = Callable[[str], "str | None"]


@dataclass(frozen=True, slots=True)
class ChannelFacts:
    adapter: str  # "ari" | "agi"
    channel_id: str  # ARI channel id / AGI agi_uniqueid
    channel_name: str  # e.g. PJSIP/agent-00000001
    dialed: str
    caller_id: str
    account: str = ""  # OUTGUARD_ACCOUNT
    tenant: str = ""  # OUTGUARD_TENANT
    purpose: str = ""  # OUTGUARD_PURPOSE
    campaign: str = ""  # OUTGUARD_CAMPAIGN
    #: the PBX the channel is on (the adapter's target name); with the channel id, the
    #: channel's identity: two PBXes may use the same ids
    pbx: str = DEFAULT_PBX
    #: what the channel says of its earlier decisions, so that a channel screened again
    #: after outguard died between a decision and carrying it out gets one row per
    #: decision carried out (``Screener._new_id``): ``waiting`` - found waiting for a verdict
    #: after a (re)connect (ARI: still in Stasis), so its latest decision, if any, was never
    #: carried out; ``carried`` - the decision id the channel holds (``OUTGUARD_DECISION_ID``,
    #: set only with a verdict carried out; "" for none yet; None when the adapter cannot
    #: tell, and then every earlier decision counts as carried out)
    waiting: bool = False
    carried: str | None = None

    @property
    def endpoint(self) -> str:
        """The endpoint part of a channel name: PJSIP/agent-0000002a -> agent."""
        match = _ENDPOINT.match(self.channel_name)
        return match.group(1) if match else ""


#: the longest account, tenant, purpose or campaign a channel variable may carry
MAX_VARIABLE_CHARS = 128


def channel_problems(facts: ChannelFacts) -> list[str]:
    """What is malformed in the channel variables (empty: nothing). A call whose variables
    are malformed is refused with reason ``channel_invalid`` and these sentences, never
    left undecided (undecided, a fail-open dialplan would dial it unscreened)."""
    problems = []
    for variable, value in (("OUTGUARD_ACCOUNT", facts.account), ("OUTGUARD_TENANT", facts.tenant),
                            ("OUTGUARD_PURPOSE", facts.purpose),
                            ("OUTGUARD_CAMPAIGN", facts.campaign)):
        if len(value) > MAX_VARIABLE_CHARS:
            problems.append(f"{variable} is longer than {MAX_VARIABLE_CHARS} characters")
        elif not value.isprintable():
            problems.append(f"{variable} {value!r} holds control characters")
    if not any(p.startswith("OUTGUARD_PURPOSE") for p in problems):
        try:
            parse_purpose(facts.purpose)
        except ValueError as exc:
            problems.append(f"OUTGUARD_PURPOSE: {exc}")
    return problems


def parse_purpose(text: str) -> Purpose:
    try:
        return Purpose(text.strip().lower()) if text.strip() else Purpose.MARKETING
    except ValueError:
        raise ValueError(
            f"unknown call purpose {text!r} (one of {', '.join(p.value for p in Purpose)})"
        ) from None


def build_attempt(
    facts: ChannelFacts,
    at: datetime,
    call_id: str,
    resolve_account: AccountResolver,
    tenant_of: TenantOf,
    default_tenant: str,
) -> CallAttempt:
    """Account: the channel variable, else the store's mapping, else the endpoint name.
    Tenant: the channel variable, else the account's tenant, else the default tenant.
    Never raises: a malformed variable is for ``channel_problems`` to report."""
    account = (
        facts.account.strip()
        or resolve_account(facts.endpoint, facts.channel_name, facts.caller_id)
        or facts.endpoint
        or facts.channel_name
    )
    tenant = facts.tenant.strip() or tenant_of(account) or default_tenant
    try:
        purpose = parse_purpose(facts.purpose)
    except ValueError:  # channel_problems() names it; the call is refused
        purpose = Purpose.MARKETING
    return CallAttempt(
        tenant=tenant,
        account=account,
        caller_id=facts.caller_id,
        destination=facts.dialed,
        at=at,
        purpose=purpose,
        campaign=facts.campaign.strip() or None,
        channel_id=facts.channel_id,
        call_id=call_id,
    )
