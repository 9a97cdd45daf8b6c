"""Log line formats: the default text line, or one JSON object per line for a log shipper
(``outguard --log-format json ...`` or ``OUTGUARD_LOG_FORMAT=json``)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from outguard.logsafe import SafeFormatter

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message"}`` plus ``exc`` when there is a traceback; the
    message is formatted (%-style arguments applied) exactly as the text line's."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: int, fmt: str = "text") -> None:
    """Set up the root logger once (the CLI's entry point calls this)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler()
    # text: control characters escaped (outguard.logsafe); JSON escapes them by itself
    handler.setFormatter(JsonFormatter() if fmt == "json" else SafeFormatter(TEXT))
    logging.basicConfig(level=level, handlers=[handler])
