"""The small exception hierarchy of the rules package.

Every error carries data a caller can show; the edges (CLI, HTTP API, dialplan) translate
them, the rules package never prints or logs them.
"""

from __future__ import annotations

from dataclasses import dataclass


class RulesError(Exception):
    """Base of every error raised by the rules package."""


class NumberError(RulesError, ValueError):
    """A phone number that cannot be normalised; the message says what is wrong.

    ``raw`` is the input as given (may be masked by the caller before logging).
    """

    def __init__(self, message: str, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


@dataclass(frozen=True, slots=True)
class PolicyIssue:
    """One problem in a policy file: where it is and what is wrong."""

    file: str
    line: int  # 1-based; 0 when the position is unknown
    key: str  # dotted path, e.g. "rules[3].cause"
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}: {self.message}"


class PolicyError(RulesError):
    """A policy (file or preset) that cannot be used; ``issues`` lists every problem."""

    def __init__(self, issues: list[PolicyIssue]) -> None:
        self.issues = list(issues)
        head = "; ".join(str(i) for i in self.issues[:5])
        more = f" (+{len(self.issues) - 5} more)" if len(self.issues) > 5 else ""
        super().__init__(f"{len(self.issues)} policy error(s): {head}{more}")

    def as_tuples(self) -> list[tuple[str, int, str, str]]:
        """The issues as ``(file, line, key, message)`` tuples."""
        return [(i.file, i.line, i.key, i.message) for i in self.issues]
