"""What handlers take from the application and the request (keys set by ``setup_api``)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CollectorRegistry

from outguard import views
from outguard.api.core import TokenCache
from outguard.api.metrics import Collector
from outguard.config import Settings
from outguard.enforcement import Enforcer
from outguard.errors import OutguardError
from outguard.server import ENFORCER, SCREENER, SETTINGS, STORE
from outguard.service import Screener
from outguard.store.aio import AsyncStore
from outguard.store.base import User

USER = web.RequestKey("user", User)
TOKENS = web.AppKey("tokens", TokenCache)
COLLECTOR = web.AppKey("metrics_collector", Collector)
REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
#: set when the app shuts down: live streams end so the server need not wait for them
CLOSING = web.AppKey("closing", asyncio.Event)


class EnforcementUnavailable(OutguardError):
    """The enforcement engine is not running in this process."""

    error_id = "enforcement_unavailable"


def store(request: web.Request) -> AsyncStore:
    return request.app[STORE]


def screener(request: web.Request) -> Screener:
    return request.app[SCREENER]


def settings(request: web.Request) -> Settings:
    return request.app[SETTINGS]


def actor(request: web.Request) -> str:
    """Who made a change, for the audit trail: the token's user."""
    user = request.get(USER)
    return user.name if user is not None else "api"


def mask(request: web.Request) -> views.Mask:
    return views.masker(request.app[SETTINGS].api.show_numbers)


def enforcer(request: web.Request) -> Enforcer:
    """The enforcement facade (503 enforcement_unavailable when none runs)."""
    found = request.app.get(ENFORCER)
    if found is None:
        raise EnforcementUnavailable("the enforcement engine is not running")
    return found
