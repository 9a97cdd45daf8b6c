"""Does a faster JSON decoder pay for itself on the ARI event path? Measure it.

Decodes the ARI events one continue-mode call brings now (StasisStart and StasisEnd, as
Asterisk 22 sends them with four ``channelvars``) with the standard library's ``json``
and, when installed, ``orjson``; prints CPU microseconds per call (thread CPU time, so other
processes on the shared host do not count).

    .venv/bin/python -m bench.decode --rounds 20000
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

CHANNEL = {
    "id": "pbx-1796195686.42", "name": "PJSIP/agent-00000029", "state": "Ring",
    "protocol_id": "2b8e4f1a-7c51-4cf1-9f0e-1f5fb1c7c3a1@127.0.0.1",
    "caller": {"name": "Agent 1", "number": "01088886666"},
    "connected": {"name": "", "number": ""}, "accountcode": "",
    "dialplan": {"context": "outguard-ari", "exten": "13800138000", "priority": 2,
                 "app_name": "Stasis", "app_data": "outguard,13800138000"},
    "creationtime": "2026-12-02T07:30:01.123+0000", "language": "en",
    "channelvars": {"OUTGUARD_ACCOUNT": "seat-17", "OUTGUARD_TENANT": "t1",
                    "OUTGUARD_PURPOSE": "", "OUTGUARD_CAMPAIGN": "",
                    "OUTGUARD_FAIL_MODE": "closed"},
}
EVENTS = [
    json.dumps({"type": "StasisStart", "timestamp": "2026-12-02T07:30:01.124+0000",
                "args": ["13800138000"], "channel": CHANNEL, "asterisk_id": "52:54:00:12:34:56",
                "application": "outguard"}),
    json.dumps({"type": "StasisEnd", "timestamp": "2026-12-02T07:30:01.127+0000",
                "channel": {**CHANNEL, "dialplan": {**CHANNEL["dialplan"],
                                                    "context": "outguard-allow",
                                                    "priority": 1}},
                "asterisk_id": "52:54:00:12:34:56", "application": "outguard"}),
]


def per_call_us(loads: Callable[[str], Any], rounds: int) -> float:
    started = time.thread_time_ns()
    for _ in range(rounds):
        for text in EVENTS:
            loads(text)
    return (time.thread_time_ns() - started) / rounds / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    decoders: dict[str, Callable[[str], Any]] = {"json": json.loads}
    try:
        import orjson

        decoders["orjson"] = orjson.loads
    except ImportError:
        print("orjson is not installed: only json measured")
    print(f"{len(EVENTS)} events per call, {sum(len(e) for e in EVENTS)} bytes")
    for name, loads in decoders.items():
        runs = [per_call_us(loads, args.rounds) for _ in range(args.repeat)]
        print(f"{name}: {statistics.median(runs):.1f} us CPU per call (median of "
              f"{args.repeat}; {min(runs):.1f}-{max(runs):.1f})")


if __name__ == "__main__":
    main()
