"""The access log: method, path, status, size, time and user, never a query string (it
may hold searched numbers) and with phone numbers in paths masked unless
``api.show_numbers`` is on. Tokens never appear (they travel in a header)."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from outguard.privacy import masked

_NUMBER = re.compile(r"(?:\+|%2[bB])?\d[\d\-]{6,}")


def masked_path(path: str) -> str:
    return _NUMBER.sub(lambda m: masked(m.group(0).replace("%2B", "+").replace("%2b", "+")), path)


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        from outguard.api.context import USER
        from outguard.server import SETTINGS

        app = getattr(request, "app", None)
        settings = app.get(SETTINGS) if app is not None else None
        show = settings is not None and settings.api.show_numbers
        user = request.get(USER) if isinstance(request, web.Request) else None
        self.logger.info(
            "%s %s %d %d %.1fms %s %s", request.method,
            request.path if show else masked_path(request.path), response.status,
            response.body_length, time * 1000, user.name if user is not None else "-",
            request.remote or "-",
        )
