"""Call events the call feed may still owe the other instances, across a stop or a crash.

Each instance appends its call events to the feed beside the call path, from an in-memory
backlog; an instance that stops (or is killed) with events not appended yet would take
them with it, and the other instances' risk figures (and so the enforcement leader's
triggers) would miss its calls until they restart. Whether Redis had been noticed to fail
does not matter: a kill -9 may come after Redis stopped answering and before the next
append found out. So the feed keeps, in the instance's spool directory (one per instance,
on durable disk), a high-water mark instead (:class:`FeedMark`): a time before which every
call event of this instance is known to be on the feed. It moves only when the backlog
has been appended whole and nothing was dropped, at most every few seconds (written
atomically and fsync-ed by the publisher, off the call path: never a write per call), and
at a graceful stop that appended everything.

At every start the events since the mark (less a slack for events published a little
after their time) are derived again from the call log, which keeps every decision and
outcome (``events_from_log``): the decisions made since then and the outcomes known since
then, of this instance's PBXes. ``CallFeed.recover`` appends those the feed does not hold
yet; readers skip an event they already read, as for any repeat.
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
#: how much earlier than the mark the events are derived again: a decision is published a
#: reservation's round trip (at most a failure's durable write) after its time, an outcome
#: at about its time
SLACK_S = 60.0


class FeedMark:
    """``feed-mark.json`` in the instance's spool directory: ``{"through": epoch
    seconds}``, every call event of this instance published before then is on the feed.
    Absent before the instance's first start in cluster mode (nothing owed). A
    ``feed-debt.json`` an earlier version left (``{"since": ...}``) is honoured until the
    mark moves."""

    FILE = "feed-mark.json"
    LEGACY = "feed-debt.json"

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / self.FILE
        self.legacy = Path(directory) / self.LEGACY
        self._through = self._read(self.path, "through")
        self._legacy_since = self._read(self.legacy, "since")

    def _read(self, path: Path, key: str) -> float | None:
        try:
            value = json.loads(path.read_text(encoding="utf-8"))[key]
            return float(value)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # unreadable: owe from the longest a call may last, rather than nothing
            logger.warning("call feed: %s is unreadable (%s); events of the last %.0f h"
                           " are checked against the feed", path, exc,
                           MAX_CALL_AGE_S / 3600)
            return time.time() - MAX_CALL_AGE_S

    @property
    def through(self) -> float | None:
        """The mark (None: never written)."""
        return self._through

    @property
    def since(self) -> float | None:
        """Since when events of this instance may be missing from the feed (None: this
        instance never ran in cluster mode with this spool directory)."""
        owed = [t - SLACK_S for t in (self._through,) if t is not None]
        owed += [t for t in (self._legacy_since,) if t is not None]
        return min(owed) if owed else None

    def advance(self, through: float) -> None:
        """Every event published before ``through`` is on the feed: written atomically
        and fsync-ed (a blocking call: the feed runs it in a thread). Never moves back."""
        if self._through is not None and through <= self._through \
                and self._legacy_since is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        with open(partial, "w", encoding="utf-8") as f:
            f.write(json.dumps({"through": through}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, self.path)
        self._through = through
        if self._legacy_since is not None:
            self.legacy.unlink(missing_ok=True)
            self._legacy_since = None


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
