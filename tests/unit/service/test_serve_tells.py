"""``outguard serve`` never says "running" over a refused ARI or AMI login: it names the
URL and the likely cause; and it says loudly when it runs the embedded demo policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ari_app.client import AriClient
from outguard.cli.serve import announce
from outguard.config import AriConfig, Settings
from outguard.errors import OutguardError
from outguard.server import Parts, Started, build_app


async def refuse(request: web.Request) -> web.Response:
    return web.Response(status=401, text="Authentication required")


async def test_a_refused_ari_login_names_the_url_and_the_cause() -> None:
    app = web.Application()
    app.router.add_get("/ari/events", refuse)
    async with TestServer(app) as server:
        url = str(server.make_url("/ari"))
        client = AriClient(url, "outguard", "wrong", "outguard")
        await client.open()
        try:
            with pytest.raises(OutguardError) as caught:
                async for _ in client.events():
                    pass
        finally:
            await client.close()
    message = str(caught.value)
    assert url in message and "401" in message and "ari.conf" in message
    assert "'outguard'" in message and "wrong" not in message  # never the password


def test_the_banner_is_replaced_by_the_failure_when_a_part_is_down(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(policy="p.toml", ari=AriConfig(url="http://pbx:8088/ari"))
    announce(Started({"ari": "ARI at http://pbx:8088/ari refused the login (401)"}, False),
             "outguard is running: ...", settings)
    out = capsys.readouterr()
    assert "running" not in out.out and "running" not in out.err
    assert "ERROR: ARI http://pbx:8088/ari is NOT connected" in out.err
    assert "401" in out.err
    announce(Started({}, False), "outguard is running: ...", settings)
    assert "outguard is running" in capsys.readouterr().out


def test_the_demo_policy_is_announced_loudly(capsys: pytest.CaptureFixture[str]) -> None:
    announce(Started({}, True), "outguard is running: ...", Settings())
    err = capsys.readouterr().err
    assert "WARNING" in err and "DEMO policy" in err and "AUTO-SUSPENSION" in err


async def test_health_says_which_policy_runs(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(store=str(tmp_path / "og.db"))  # no policy set
    app = build_app(settings, Parts(ari=False, agi=False, ami=False, api=False))
    async with TestClient(TestServer(app)) as client:
        body = await (await client.get("/health")).json()
    assert body["demo_policy"] is True and "demo" in body["policy"]
    assert any("DEMO policy" in r.getMessage() for r in caplog.records)
