"""The service's exception hierarchy.

Every error carries data (what was not found, which lines were rejected) so that the edges
can translate it: the HTTP API into an error body with ``error_id``, the CLI into a
``click.ClickException``, the adapters into the dialplan's failure branch. Nothing below
the edges formats these for people beyond ``str(exc)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class OutguardError(Exception):
    """Base of every error outguard raises on purpose.

    ``error_id`` is a stable machine-readable code; ``details`` holds the data the edge may
    show (never secrets).
    """

    error_id = "outguard_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form for HTTP error bodies."""
        return {"error_id": self.error_id, "message": self.message, **self.details}


class NotFound(OutguardError):
    """A named thing (tenant, account, list, suspension ...) does not exist."""

    error_id = "not_found"

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} {key!r} not found", kind=kind, key=key)
        self.kind = kind
        self.key = key


class Conflict(OutguardError):
    """The change contradicts what is stored (duplicate name, appeal already decided ...)."""

    error_id = "conflict"


class InvalidInput(OutguardError):
    """A value given by a person or a file is not acceptable (bad role, bad list kind ...)."""

    error_id = "invalid_input"


class AuthFailed(OutguardError):
    """A token is unknown, revoked or does not match."""

    error_id = "auth_failed"


@dataclass(frozen=True, slots=True)
class Reject:
    """One input line an import refused, with the reason a person can act on."""

    line: int  # 1-based line number in the file
    reason: str
    text: str = ""  # the start of the line, printable, truncated


class ImportFailed(OutguardError):
    """An import was abandoned; the target list is exactly as it was before.

    ``rejects`` holds the first rejected lines (capped), ``rejected`` the full count.
    """

    error_id = "import_failed"

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        line: int | None = None,
        rejects: Sequence[Reject] = (),
        rejected: int = 0,
    ) -> None:
        super().__init__(message, path=path, line=line, rejected=rejected)
        self.path = path
        self.line = line
        self.rejects: tuple[Reject, ...] = tuple(rejects)
        self.rejected = rejected

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["rejects"] = [
            {"line": r.line, "reason": r.reason, "text": r.text} for r in self.rejects
        ]
        return body


class StoreError(OutguardError):
    """The store could not do its job (database unavailable, corrupt, writer stopped)."""

    error_id = "store_error"
