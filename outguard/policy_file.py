"""One reading of a policy for every place that reads one: the service's start, a reload
(API, CLI), ``outguard policy validate`` and ``POST /api/policy/validate``.

Each runs the same checks: the TOML, the rules, lists, windows and causes
(``rules.policy``) and the ``[enforcement]`` table (``validate_enforcement``), and
reports every problem as one ``PolicyError``. A policy that passes here starts, reloads
and enforces exactly as validated; one that does not is never used (the service refuses to
start with it; a reload keeps the policy in force).

Policy text from an API client may include presets by name and files the operator placed
in the policy directory (``policy_dir``), nothing else: an include that points elsewhere
is reported exactly like an unknown preset, so the answer tells nothing about the files on
the server.
"""

from __future__ import annotations

from pathlib import Path

from outguard.enforcement.policy import validate_enforcement
from rules.errors import PolicyError, PolicyIssue
from rules.policy import default_policy, load_policy, parse_policy
from rules.policy_types import Policy

__all__ = ["check", "read", "parse_untrusted", "PolicyError"]


def check(policy: Policy, text: str | None = None) -> Policy:
    """The checks ``rules.policy`` cannot make (it is pure and knows no enforcement):
    the ``[enforcement]`` table. Raises ``PolicyError``; returns the policy. ``text``: the
    policy's own text when it is no file (for the lines of the issues)."""
    validate_enforcement(policy, {policy.source: text} if text is not None else None)
    return policy


def read(path: str | Path | None) -> Policy:
    """The policy file at ``path`` (empty: the embedded demo policy), fully checked."""
    return check(load_policy(path) if path else default_policy())


def parse_untrusted(text: str, policy_dir: str | Path | None) -> Policy:
    """Policy text sent by a client: includes only presets and files inside
    ``policy_dir`` (none when it is None), fully checked."""
    root = Path(policy_dir).resolve() if policy_dir else None
    return check(parse_policy(text, "<request>", root, include_files=root is not None,
                              include_root=root), text)


def issues_of(exc: PolicyError) -> list[PolicyIssue]:
    return list(exc.issues)



def check_text(text: str, policy_dir: str | None) -> dict[str, object]:
    """``parse_untrusted`` as a plain result (for a worker process): valid, issues, rules."""
    try:
        policy = parse_untrusted(text, policy_dir)
    except PolicyError as exc:
        return {"valid": False, "issues": [
            {"file": i.file, "line": i.line, "key": i.key, "message": i.message}
            for i in exc.issues]}
    return {"valid": True, "issues": [], "rules": len(policy.rules)}
