"""A real test call through the PBX, for ``outguard call`` and ``POST /api/test-call``.

It originates ``Local/NUMBER@CONTEXT`` over ARI: the caller half parks in a Stasis
application of its own (``outguard-call-<id>``), the dialled half runs the outbound
context, which screens it. When the call has ended, outguard's decision for the dialled
half is read from the call log by its channel id (outguard must be serving).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from ari_app.client import AriClient
from outguard.errors import InvalidInput, OutguardError
from outguard.store.base import LoggedCall, Store


class TestCallFailed(OutguardError):
    """The test call could not be placed (ARI refused or closed at once)."""

    error_id = "test_call_failed"


#: what the parked caller half offers (it has no phone to take codecs from); keep it to
#: codecs the carrier trunk allows, or Asterisk finds "no path to translate"
FORMATS = "ulaw,alaw"


@dataclass
class Target:
    ari_url: str
    ari_user: str
    ari_password: str
    store: str


_NUMBER = re.compile(r"^\+?[0-9]{2,20}$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
_FORMATS = re.compile(r"^[a-z0-9_]+(,[a-z0-9_]+)*$")


def check_dial(number: str, context: str, formats: str) -> None:
    """Only digits reach the endpoint string: ``Local/1@ctx/n`` or an ``@`` would dial
    something else than the operator meant."""
    if not _NUMBER.match(number):
        raise InvalidInput(f"{number!r}: a test call needs digits only (an optional +)",
                           field="number")
    if not _NAME.match(context):
        raise InvalidInput(f"{context!r} is not a dialplan context name", field="context")
    if not _FORMATS.match(formats):
        raise InvalidInput(f"{formats!r} is not a codec list like ulaw,alaw", field="formats")


async def place(target: Target, number: str, variables: dict[str, str], context: str,
                caller_id: str, timeout_s: float, hold_s: float | None,
                formats: str = FORMATS) -> dict[str, Any]:
    """Originate, wait for the end; return what happened to the two halves."""
    check_dial(number, context, formats)
    app = f"outguard-call-{secrets.token_hex(4)}"
    caller, dialled = f"og-call-{secrets.token_hex(6)}", f"og-dial-{secrets.token_hex(6)}"
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    opened = asyncio.Event()
    async with AriClient(target.ari_url, target.ari_user, target.ari_password, app) as client:
        async def pump() -> None:
            async for event in client.events(on_open=opened.set):
                await events.put(event)

        reader = asyncio.ensure_future(pump())
        try:
            async with asyncio.timeout(10):
                await _first(opened, reader)
            await client.request("POST", "/channels", params={
                "endpoint": f"Local/{number}@{context}", "app": app, "channelId": caller,
                "otherChannelId": dialled, "callerId": caller_id or None,
                "timeout": int(timeout_s), "formats": formats}, body={"variables": variables})
            for cid in (caller, dialled):
                with contextlib.suppress(Exception):
                    await client.request("POST", f"/applications/{app}/subscription",
                                         params={"eventSource": f"channel:{cid}"})
            return await _follow(client, events, caller, dialled, timeout_s, hold_s)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader


async def _first(opened: asyncio.Event, reader: asyncio.Future[None]) -> None:
    waiter: asyncio.Future[Any] = asyncio.ensure_future(opened.wait())
    await asyncio.wait([waiter, reader], return_when=asyncio.FIRST_COMPLETED)
    if not opened.is_set():
        waiter.cancel()
        reader.result()  # raises AriUnavailable
        raise TestCallFailed("the ARI events connection closed at once")


async def _follow(client: AriClient, events: asyncio.Queue[dict[str, Any]], caller: str,
                  dialled: str, timeout_s: float, hold_s: float | None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    seen: dict[str, Any] = {"answered": False, "cause": None, "cause_txt": "", "dialled": dialled}
    hangup_at: float | None = None
    while True:
        now = time.monotonic()
        wait = min(deadline, hangup_at or deadline) - now
        if wait <= 0:
            with contextlib.suppress(Exception):
                await client.hangup(caller)
            if now >= deadline:
                seen["timed_out"] = True
            hangup_at = None
            deadline = now + 5
            wait = 5
        try:
            async with asyncio.timeout(wait):
                event = await events.get()
        except TimeoutError:
            continue
        cid = (event.get("channel") or {}).get("id")
        kind = event.get("type")
        if kind == "StasisStart" and cid == caller:
            seen["answered"] = True
            if hold_s is not None:
                hangup_at = time.monotonic() + hold_s
        elif kind == "ChannelDestroyed" and cid in (caller, dialled):
            if cid == dialled or seen["cause"] is None:
                seen["cause"], seen["cause_txt"] = event.get("cause"), event.get("cause_txt", "")
            if cid == caller:
                return seen


def find_call(store: Store, channel_id: str, since: float, *, want_outcome: bool,
              wait_s: float = 5.0) -> LoggedCall | None:
    """The call-log row of a channel, waiting a little for the writer (and its outcome)."""
    deadline = time.monotonic() + wait_s
    found: LoggedCall | None = None
    while True:
        found = next((c for c in store.iter_calls(since - 5) if c.call.channel_id == channel_id),
                     None)
        done = found is not None and (not want_outcome or found.call.verdict != "allow"
                                      or found.ended_at is not None)
        if done or time.monotonic() > deadline:
            return found
        time.sleep(0.2)
