"""The dashboard: static HTML, JavaScript and CSS served by the API process (no build step).

``/`` is the page; ``/dashboard/<file>`` its scripts and styles. The files need no token;
every figure they show comes from the API, which does.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

HERE = Path(__file__).parent
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
         ".svg": "image/svg+xml"}
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
           "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                      "style-src 'self'; script-src 'self'; "
                                      "connect-src 'self'; frame-ancestors 'none'"}


def _file(name: str) -> web.Response:
    path = HERE / name
    kind = TYPES.get(path.suffix)
    if kind is None or "/" in name or name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound(reason=f"no dashboard file {name!r}")
    return web.Response(body=path.read_bytes(), content_type=kind, charset="utf-8",
                        headers=HEADERS)


async def index(request: web.Request) -> web.Response:
    return _file("index.html")


async def static(request: web.Request) -> web.Response:
    return _file(request.match_info["file"])


def setup(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/dashboard/{file}", static)
