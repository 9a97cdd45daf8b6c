"""A small ARI client on aiohttp: the REST calls outguard needs and the events WebSocket.

ari-py (the 2014 ``ari`` package) does not import on Python 3 and its asyncio successors are
slower or serialise handlers on the reader, so outguard speaks ARI directly. The
Authorization header is built here (aiohttp 3.14 deprecates ``BasicAuth``/``auth=``), and
credentials never go into URLs (``?api_key=`` ends up in logs and exception texts).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from ari_app.kept import KeptHttp, KeptUnavailable

from outguard.errors import OutguardError
from outguard.probes import ari_operation, roundtrip

logger = logging.getLogger(__name__)


class AriError(OutguardError):
    """An ARI request failed; carries the method, path, status and Asterisk's message."""

    error_id = "ari_error"

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"ARI {method} {path} -> {status}: {body[:200]}",
                         method=method, path=path, status=status)
        self.status = status


class ChannelGone(AriError):
    """The channel no longer exists (404): hung up while outguard was deciding."""

    error_id = "channel_gone"


class AriUnavailable(OutguardError):
    """Asterisk's HTTP server could not be reached."""

    error_id = "ari_unavailable"


def _answer(method: str, path: str, status: int, text: str) -> Any:
    """A reply's decoded JSON (None when empty); a status >= 300 raises ChannelGone (404
    on a channel path) or AriError with Asterisk's message."""
    if status >= 300:
        kind = ChannelGone if status == 404 and "/channels/" in path else AriError
        try:
            message = json.loads(text).get("message", text)
        except (ValueError, AttributeError):
            message = text
        raise kind(method, path, status, str(message))
    return json.loads(text) if text else None


class AriClient:
    """REST calls and the events WebSocket of one Asterisk, for one Stasis application."""

    def __init__(
        self, base_url: str, user: str, password: str, app: str,
        *, request_timeout_s: float = 5.0,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.app = app
        self.user = user
        self._headers = {"Authorization": aiohttp.encode_basic_auth(user, password)}
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        #: the requests of the call path (continue, hangup): prebuilt, on kept connections
        #: (``ari_app.kept``; a fifth of aiohttp's CPU per request, bench/rest_request.py)
        self._kept = KeptHttp(self.base, self._headers["Authorization"],
                              timeout_s=request_timeout_s) \
            if self.base.startswith("http://") else None

    async def __aenter__(self) -> AriClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=64, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=self._timeout, connector=connector
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._kept is not None:
            await self._kept.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise AriUnavailable("ARI client is not open")
        return self._session

    async def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """One REST call; returns the decoded JSON (None for 204). 404 on a channel path
        raises ChannelGone; other failures AriError; connection trouble AriUnavailable."""
        clean = {k: str(v) for k, v in (params or {}).items() if v is not None}
        try:
            with roundtrip("ari", ari_operation(method, path)):
                return await self._request(method, path, clean, body)
        except (aiohttp.ClientConnectionError, TimeoutError) as err:
            raise AriUnavailable(f"ARI {method} {path}: {err or type(err).__name__}") from err

    async def _request(self, method: str, path: str, params: dict[str, str], body: Any) -> Any:
        async with self.session.request(
            method, self.base + path, params=params, json=body
        ) as reply:
            return _answer(method, path, reply.status, await reply.text())

    async def call_path_request(self, method: str, path: str,
                                params: Mapping[str, Any]) -> None:
        """A request of the call path without a body (continue, hangup): the same
        answers and errors as :meth:`request`, sent prebuilt on a kept connection (a URL
        other than plain http goes through aiohttp)."""
        if self._kept is None:
            await self.request(method, path, params=params)
            return
        query = urlencode({k: str(v) for k, v in params.items() if v is not None},
                          quote_via=quote)
        target = f"{path}?{query}" if query else path
        try:
            with roundtrip("ari", ari_operation(method, path)):
                status, raw = await self._kept.request(method, target)
        except KeptUnavailable as err:
            raise AriUnavailable(f"ARI {err}") from err
        _answer(method, path, status, raw.decode("utf-8", "replace"))

    # -- globals --------------------------------------------------------------------------

    async def get_global(self, name: str) -> str:
        """A global dialplan variable ("" when it is not set)."""
        try:
            result = await self.request("GET", "/asterisk/variable",
                                        params={"variable": name})
        except AriError as err:
            if err.status == 404:  # "Provided variable was not found"
                return ""
            raise
        return str((result or {}).get("value") or "")

    async def set_global(self, name: str, value: str) -> None:
        await self.request("POST", "/asterisk/variable",
                           params={"variable": name, "value": value})

    # -- channels -------------------------------------------------------------------------

    async def channel(self, channel_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"/channels/{channel_id}")
        return result

    async def channel_var(self, channel_id: str, name: str) -> str:
        """A channel's variable, or a dialplan function read on it (``CDR(answer,u)``)."""
        result = await self.request("GET", f"/channels/{channel_id}/variable",
                                    params={"variable": name})
        return str((result or {}).get("value") or "")

    async def channels(self) -> list[dict[str, Any]]:
        """Every channel Asterisk has now (one request, for reconcile)."""
        result: list[dict[str, Any]] = await self.request("GET", "/channels")
        return result

    async def set_vars(self, channel_id: str, variables: Mapping[str, str]) -> None:
        await self.request(
            "POST", f"/channels/{channel_id}/variables", body={"variables": dict(variables)}
        )

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str, priority: int = 1
    ) -> None:
        await self.call_path_request(
            "POST", f"/channels/{channel_id}/continue",
            {"context": context, "extension": extension, "priority": priority},
        )

    async def hangup(self, channel_id: str, cause: int | None = None) -> None:
        params = {"reason_code": cause} if cause is not None else {"reason": "normal"}
        await self.call_path_request("DELETE", f"/channels/{channel_id}", params)

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/ring")

    async def progress(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/progress")

    async def play(self, channel_id: str, media: str, playback_id: str) -> None:
        await self.request(
            "POST", f"/channels/{channel_id}/play/{playback_id}", params={"media": media}
        )

    async def originate(
        self, endpoint: str, *, channel_id: str, app_args: str, caller_id: str = "",
        timeout_s: int = 30, variables: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "POST", "/channels",
            params={
                "endpoint": endpoint, "app": self.app, "appArgs": app_args,
                "channelId": channel_id, "callerId": caller_id or None, "timeout": timeout_s,
            },
            body={"variables": dict(variables or {})},
        )
        return result

    # -- bridges --------------------------------------------------------------------------

    async def create_bridge(self, bridge_id: str) -> None:
        await self.request("POST", f"/bridges/{bridge_id}", params={"type": "mixing"})

    async def add_to_bridge(self, bridge_id: str, *channel_ids: str) -> None:
        await self.request(
            "POST", f"/bridges/{bridge_id}/addChannel", params={"channel": ",".join(channel_ids)}
        )

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{bridge_id}")

    async def bridges(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.request("GET", "/bridges")
        return result

    # -- the application ------------------------------------------------------------------

    async def application(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"/applications/{self.app}")
        return result

    async def set_event_filter(self, allowed: Iterable[str]) -> None:
        """Have Asterisk send this application only these event types (ARI
        ``PUT /applications/{app}/eventFilter``, Asterisk 16.3 and later)."""
        await self.request(
            "PUT", f"/applications/{self.app}/eventFilter",
            body={"allowed": [{"type": kind} for kind in allowed]},
        )

    async def subscribe_channel(self, channel_id: str) -> None:
        """Keep receiving a channel's events after it leaves Stasis (continue mode)."""
        await self.request(
            "POST", f"/applications/{self.app}/subscription",
            params={"eventSource": f"channel:{channel_id}"},
        )

    async def info(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/asterisk/info")
        return result

    async def events(
        self, on_open: Callable[[], None] | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Connect the events WebSocket and yield events until it closes.

        Registers the Stasis application (``on_open`` is called then); raises
        AriUnavailable when it cannot connect.
        """
        url = self.base.replace("http", "ws", 1) + "/events"
        try:
            ws = await self.session.ws_connect(
                url, params={"app": self.app, "subscribeAll": "false"}, heartbeat=10.0,
            )
        except aiohttp.ClientResponseError as err:
            if err.status == 401:
                raise AriUnavailable(
                    f"ARI at {self.base} refused the login (401 Unauthorized): user "
                    f"{self.user!r} and the password in OUTGUARD_ARI_PASSWORD do not match "
                    f"a user in Asterisk's ari.conf", status=401) from err
            raise AriUnavailable(f"ARI events WebSocket {url}: {err}") from err
        except (aiohttp.ClientError, TimeoutError) as err:
            raise AriUnavailable(f"ARI events WebSocket {url}: {err}") from err
        self._ws = ws
        if on_open is not None:
            on_open()
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    try:
                        event = json.loads(message.data)
                    except ValueError:
                        logger.warning("ARI sent a frame that is not JSON: %.200s", message.data)
                        continue
                    if isinstance(event, dict):
                        yield event
                elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
        finally:
            self._ws = None
            await ws.close()

    async def drop_events(self) -> None:
        """Close the events WebSocket now (``events`` ends; its owner reconnects)."""
        ws = self._ws
        if ws is not None:
            await ws.close()
