"""A policy as people read it (``outguard policy show``, ``GET /api/policy``)."""

from __future__ import annotations

from typing import Any

from outguard.views import jsonable
from rules.errors import PolicyError
from rules.policy_types import STAGE, Policy


def summarise(policy: Policy) -> dict[str, Any]:
    """Rules in evaluation order with their stage, mode and parameters; lists; windows."""
    return {
        "source": policy.source or "(embedded demo policy)",
        "default_region": policy.default_region,
        "timezone": policy.timezone,
        "includes": list(policy.includes),
        "rules": [
            {"id": r.id, "kind": r.kind.value, "stage": STAGE[r.kind], "mode": r.mode.value,
             "cause": r.cause,
             "purposes": sorted(p.value for p in r.purposes), "regions": sorted(r.regions),
             "params": jsonable(r.params), "where": r.source}
            for r in policy.ordered_rules()
        ],
        "lists": [{"name": s.name, "kind": s.kind.value, "scope": s.scope.value,
                   "exempts": list(s.exempts), "max_age_days": s.max_age_days}
                  for s in policy.lists.values()],
        "windows": sorted(policy.windows),
        "packs": [{"name": k.name, "title": k.title, "checked": k.checked.isoformat(),
                   "where": k.source,
                   "sources": [{"figure": x.figure, "basis": x.basis, "cite": x.cite,
                                "url": x.url or None} for x in k.sources]}
                  for k in policy.packs],
        "enforcement": jsonable(policy.enforcement),
    }


def issues(exc: PolicyError) -> list[dict[str, Any]]:
    return [{"file": i.file, "line": i.line, "key": i.key, "message": i.message}
            for i in exc.issues]
