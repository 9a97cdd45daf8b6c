"""Number masking for logs, listings and the dashboard (privacy on by default)."""

from __future__ import annotations

import os

_SHOW = os.environ.get("OUTGUARD_SHOW_NUMBERS", "").lower() in ("1", "true", "yes")


def show_numbers(enabled: bool) -> None:
    """Turn masking off (True) or on (False) process-wide."""
    global _SHOW
    _SHOW = enabled


def mask(number: str) -> str:
    """+8613800138000 -> +86138****8000: keeps the country and the first and last digits
    an operator needs to recognise a call, hides the rest."""
    if _SHOW or len(number) < 7:
        return number
    keep_head = 6 if number.startswith("+") else 3
    return number[:keep_head] + "*" * (len(number) - keep_head - 4) + number[-4:]
