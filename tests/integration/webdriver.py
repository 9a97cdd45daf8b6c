"""A small W3C WebDriver client over HTTP to Debian's chromedriver, driving headless
Chromium (no Selenium, no Playwright download: the machine has no internet).

Packages: ``chromium`` and ``chromium-driver`` (binaries /usr/bin/chromium and
/usr/bin/chromedriver).
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
#: where browser tests save screenshots (CI keeps the directory as an artefact)
ARTEFACTS = Path(os.environ.get("OUTGUARD_TEST_ARTEFACTS")
                 or Path(__file__).resolve().parents[2] / "test-artefacts")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage", "--window-size=1400,1000"]
T = TypeVar("T")


def binaries() -> tuple[str | None, str | None]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    return chromium, shutil.which("chromedriver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebDriverError(AssertionError):
    pass


class Browser:
    """One WebDriver session."""

    def __init__(self, http: aiohttp.ClientSession, base: str, session_id: str) -> None:
        self.http, self.base, self.sid = http, base, session_id

    async def cmd(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.base}/session/{self.sid}{path}"
        async with self.http.request(method, url, json=body) as reply:
            data = await reply.json()
        if reply.status >= 300:
            raise WebDriverError(f"{method} {path}: {data.get('value')}")
        return data.get("value")

    async def get(self, url: str) -> None:
        await self.cmd("POST", "/url", {"url": url})

    async def script(self, source: str, *args: Any) -> Any:
        return await self.cmd("POST", "/execute/sync", {"script": source, "args": list(args)})

    async def find(self, css: str) -> str:
        found = await self.cmd("POST", "/element", {"using": "css selector", "value": css})
        if not isinstance(found, dict) or ELEMENT not in found:
            raise WebDriverError(f"no element {css!r}: {found!r}")
        return str(found[ELEMENT])

    async def find_all(self, css: str) -> list[str]:
        found = await self.cmd("POST", "/elements", {"using": "css selector", "value": css})
        return [str(f[ELEMENT]) for f in found]

    async def click(self, css: str) -> None:
        await self.cmd("POST", f"/element/{await self.find(css)}/click", {})

    async def type(self, css: str, text: str) -> None:
        await self.cmd("POST", f"/element/{await self.find(css)}/value", {"text": text})

    async def text(self, css: str) -> str:
        return str(await self.cmd("GET", f"/element/{await self.find(css)}/text"))

    async def wait_for(self, what: str, probe: Callable[[], Awaitable[T]],
                       timeout: float = 15.0) -> T:
        """Poll ``probe`` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = await probe()
            except WebDriverError as exc:
                last = exc
            if last and not isinstance(last, Exception):
                return last
            await asyncio.sleep(0.2)
        logs = await self.script("return document.body.innerText.slice(0, 2000)")
        raise AssertionError(f"timed out waiting for {what} (last: {last!r}); page:\n{logs}")

    async def fill(self, form: str, values: dict[str, str]) -> None:
        """Set the named fields of a form (inputs, selects, text areas) and submit it."""
        missing = await self.script(
            "const f = document.querySelector(arguments[0]); if (!f) return 'no form';"
            "for (const [k, v] of Object.entries(arguments[1])) {"
            "  const el = f.elements[k]; if (!el) return 'no field ' + k;"
            "  el.value = v; el.dispatchEvent(new Event('change')); }"
            "f.requestSubmit(); return '';", form, values)
        if missing:
            raise WebDriverError(f"{form}: {missing}")

    async def screenshot(self, name: str) -> Path:
        """Save the page as PNG among the test artefacts (OUTGUARD_TEST_ARTEFACTS, default
        test-artefacts/ in the checkout) and return its path."""
        data = await self.cmd("GET", "/screenshot")
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTEFACTS / f"{name}.png"
        path.write_bytes(base64.b64decode(data))
        return path


@asynccontextmanager
async def browser(downloads: Path | None = None) -> AsyncIterator[Browser]:
    """chromedriver + headless Chromium with a throwaway profile; files the page
    downloads go to ``downloads`` (default: the profile's own directory)."""
    chromium, driver = binaries()
    assert chromium and driver
    port = free_port()
    profile = tempfile.mkdtemp(prefix="og-chromium-")
    proc = await asyncio.create_subprocess_exec(
        driver, f"--port={port}", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            await _wait_ready(http, base)
            prefs = {"download.default_directory": str(downloads or Path(profile) / "downloads"),
                     "download.prompt_for_download": False}
            caps = {"capabilities": {"alwaysMatch": {
                "browserName": "chrome", "goog:chromeOptions": {
                    "binary": chromium, "prefs": prefs,
                    "args": [*CHROMIUM_ARGS, f"--user-data-dir={profile}"]}}}}
            async with http.post(f"{base}/session", json=caps) as reply:
                data = await reply.json()
            if reply.status >= 300:
                raise WebDriverError(f"no WebDriver session: {data.get('value')}")
            session = Browser(http, base, data["value"]["sessionId"])
            try:
                yield session
            finally:
                try:
                    await session.cmd("DELETE", "")
                except (WebDriverError, aiohttp.ClientError):
                    pass
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _wait_ready(http: aiohttp.ClientSession, base: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            async with http.get(f"{base}/status") as reply:
                if reply.status == 200 and (await reply.json())["value"].get("ready"):
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise WebDriverError("chromedriver did not become ready within 15 s")
