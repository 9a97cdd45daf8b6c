"""Call events the call feed still owes the other instances, across a stop or a crash.

While Redis cannot take call events they wait in ``CallFeed``'s in-memory backlog; an
instance that stops (or is killed) meanwhile would take them with it, and the other
instances' risk figures (and so the enforcement leader's triggers) would miss its calls
until they restart. So the debt is written down durably: the first time the feed cannot
append, :class:`FeedDebt` records, in the instance's spool directory (one per instance,
on durable disk), since when its events may be missing (the oldest waiting event's time);
it is cleared once the backlog has been appended whole, and a graceful stop that could not
append everything leaves it in place.

At the next start the events are derived again from the call log, which keeps every
decision and outcome (``events_from_log``): the decisions made since then and the
outcomes known since then, of this instance's PBXes. ``CallFeed.recover`` appends those
the feed does not hold yet; readers skip an event they already read, as for any repeat.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from outguard.callevents import FAILED, CallDecided, CallEnded, went_out
from outguard.live import MAX_CALL_AGE_S
from outguard.store.base import LoggedCall

logger = logging.getLogger(__name__)

#: the furthest back a debt reaches (the risk figures' longest window and a day)
MAX_DEBT_S = 8 * 86400.0
#: how much earlier than the oldest waiting event the events are derived again: a
#: decision is published a reservation's round trip after its time, an outcome at about
#: its time, and events close to the outage may not have been appended
SLACK_S = 60.0


class FeedDebt:
    """``feed-debt.json`` in the instance's spool directory: ``{"since": epoch seconds}``
    while call events of this instance may be missing from the feed; absent otherwise."""

    FILE = "feed-debt.json"

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / self.FILE
        self._since = self._read()

    def _read(self) -> float | None:
        try:
            since = json.loads(self.path.read_text(encoding="utf-8"))["since"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # unreadable: owe from the longest a call may last, rather than nothing
            logger.warning("call feed: %s is unreadable (%s); events of the last %.0f h"
                           " are checked against the feed", self.path, exc,
                           MAX_CALL_AGE_S / 3600)
            return time.time() - MAX_CALL_AGE_S
        return float(since)

    @property
    def since(self) -> float | None:
        """Since when events may be missing (None: nothing is owed)."""
        return self._since

    def owe(self, since: float) -> None:
        """Events from ``since`` on may not reach the feed: written (fsync-ed) unless an
        earlier debt is already."""
        if self._since is not None and self._since <= since:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        with open(partial, "w", encoding="utf-8") as f:
            f.write(json.dumps({"since": since}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, self.path)
        self._since = since

    def clear(self) -> None:
        """Everything owed reached the feed."""
        if self._since is None:
            return
        self.path.unlink(missing_ok=True)
        self._since = None


def events_from_log(calls: Iterable[LoggedCall], since: float,
                    pbxes: frozenset[str]) -> Iterator[CallDecided | CallEnded]:
    """The feed's events the call log holds for ``pbxes`` from ``since`` on: each decision
    made since then, each outcome of a call that went out known since then (``calls``
    must reach back ``MAX_CALL_AGE_S`` before ``since`` for the outcomes of long calls).
    They carry what the risk figures read; the decision's message is not logged ("")."""
    for logged in calls:
        c = logged.call
        if c.pbx not in pbxes:
            continue
        out = went_out(c.verdict, c.rule)
        if c.at >= since:
            yield CallDecided(
                call_id=c.decision_id, channel_id=c.channel_id, adapter=c.adapter, at=c.at,
                tenant=c.tenant, account=c.account, caller_id=c.caller_id,
                destination=c.destination, allowed=out, rule=c.rule, reason=c.reason,
                message="", cause=0 if out else (logged.cause or 0), shadow=c.shadow,
                decision_us=c.decision_us, purpose=c.purpose, campaign=c.campaign,
                pbx=c.pbx, failed=c.verdict == FAILED)
        if out and logged.ended_at is not None and logged.ended_at >= since:
            yield CallEnded(
                call_id=c.decision_id, at=logged.ended_at, tenant=c.tenant,
                account=c.account, caller_id=c.caller_id, destination=c.destination,
                answered_at=logged.answered_at, duration=logged.duration,
                cause=logged.cause, note=logged.end_note, pbx=c.pbx)
