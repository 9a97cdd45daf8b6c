"""Log lines that no caller can forge: every control character in a log message is escaped.

Values in log lines come from outside: channel variables (``OUTGUARD_ACCOUNT``), SIP
caller IDs, API paths, file names. A line feed in one of them would start a forged log
line, an ANSI escape would repaint the operator's terminal. ``SafeFormatter`` escapes every
non-printable character of the formatted message (``\\n``, ``\\x1b``, ``\\u2028``...), once,
for every logger, so no call site has to remember (``outguard.logfmt`` puts it on the
root handler; its JSON lines escape control characters by themselves). Tracebacks keep their lines: they are
the program's, and the values inside them are already ``repr``-quoted.
"""

from __future__ import annotations

import logging

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """``text`` with every non-printable character written as an escape."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else _NAMED.get(c) or (
            f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
            if ord(c) < 0x10000 else f"\\U{ord(c):08x}")
        for c in text)


class SafeFormatter(logging.Formatter):
    """A Formatter whose message part never holds a control character."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = escape(record.message)
        return super().formatMessage(record)

