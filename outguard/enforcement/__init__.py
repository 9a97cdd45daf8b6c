"""Enforcement beside the call path: risk figures, triggers, graded suspensions (封号),
appeals (申诉) and lifts (解封), complaints and callee marks (标记), caller-ID verification
sweeps, webhooks. The facade is ``Enforcer`` (api.py); the call path only reads the
resulting party state from the snapshot."""

from outguard.enforcement.api import Enforcer
from outguard.enforcement.intake import complaint_list_name
from outguard.enforcement.policy import EnforcementPolicy, parse_duration, validate_enforcement
from outguard.enforcement.records import (
    ComplaintImport, Firing, PartyStatus, RiskFigures, SweepResult,
)

__all__ = [
    "ComplaintImport", "EnforcementPolicy", "Enforcer", "Firing", "PartyStatus",
    "RiskFigures", "SweepResult", "complaint_list_name", "parse_duration",
    "validate_enforcement",
]
