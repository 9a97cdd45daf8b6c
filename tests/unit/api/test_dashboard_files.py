"""The dashboard's files are served without a token; the access log masks numbers."""

from __future__ import annotations

import logging

import pytest

from outguard.api.access_log import masked_path
from outguard.dashboard import HERE
from tests.unit.api.conftest import Api


async def test_the_page_and_its_scripts_are_served_without_a_token(api: Api) -> None:
    page = await api.call("GET", "/", role=None)
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    assert 'src="/dashboard/app.js"' in html and 'id="token-input"' in html
    for name in ("app.js", "api.js", "charts.js", "pages.js", "i18n.js", "health.js",
                 "style.css"):
        response = await api.call("GET", f"/dashboard/{name}", role=None)
        assert response.status == 200, name
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("name", ["nope.js", ".hidden.js", "..%2F__init__.py", "__init__.py"])
async def test_nothing_else_is_served(api: Api, name: str) -> None:
    response = await api.call("GET", f"/dashboard/{name}", role=None)
    assert response.status == 404
    assert (await response.json())["error_id"] == "not_found"


def test_every_module_the_page_imports_exists() -> None:
    import re

    for js in HERE.glob("*.js"):
        for target in re.findall(r'from "\./([\w.]+)"', js.read_text(encoding="utf-8")):
            assert (HERE / target).is_file(), (js.name, target)


def test_both_languages_have_the_same_labels() -> None:
    import re

    keys = lambda part: set(re.findall(r'"([a-z_]+\.[a-z_.]+|[a-z]+)":', part))
    known: set[str] = set()
    # i18n.js's own table, and the tables pages add with addLabels({en: ..., zh: ...}) or
    # addLabelPairs({key: [en, zh]})
    for source in HERE.glob("*.js"):
        text = source.read_text(encoding="utf-8")
        if source.name != "i18n.js" and "addLabelPairs({" in text:  # each key once, both words
            block = text.split("addLabelPairs({", 1)[1].split("\n}, ", 1)[0]
            pairs = re.findall(r'"([a-z_]+\.[a-z_.]+)": \[\s*"(?:[^"\\]|\\.)+",\s*'
                               r'"(?:[^"\\]|\\.)+"\]', block)
            assert len(pairs) == block.count('": [') and pairs, source.name
            known |= set(pairs)
            continue
        if source.name != "i18n.js":
            if "addLabels({" not in text:
                continue
            text = text.split("addLabels({", 1)[1].split("\n}, ", 1)[0]
        en, zh = text.split("  zh: {", 1)
        en_keys, zh_keys = keys(en.split("  en: {", 1)[1]), keys(zh.split("\n  },", 1)[0])
        assert en_keys == zh_keys, source.name
        known |= zh_keys
    used = set()
    for source in [*HERE.glob("*.js"), HERE / "index.html"]:
        used |= set(re.findall(r'(?:t\(|data-i18n(?:-placeholder)?=)"([a-z_]+\.[a-z_.]+)"',
                               source.read_text(encoding="utf-8")))
    assert used - known == set()


@pytest.mark.parametrize(("path", "shown"), [
    ("/api/caller-ids/+861088886666", "/api/caller-ids/+86108***6666"),
    ("/api/numbers/13900139000", "/api/numbers/139****9000"),
    ("/api/appeals/12/approve", "/api/appeals/12/approve"),
])
def test_the_access_log_masks_numbers_in_paths(path: str, shown: str) -> None:
    assert masked_path(path) == shown


async def test_the_access_log_line_names_the_user_not_the_token(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from outguard.api.access_log import AccessLogger
    from outguard.api.context import USER
    from outguard.store.base import User

    request = make_mocked_request("GET", "/api/numbers/13900139000?q=13900139000",
                                  app=api.client.app)
    request[USER] = User(1, "alice", "admin")
    with caplog.at_level(logging.INFO, logger="outguard.access"):
        AccessLogger(logging.getLogger("outguard.access"), "").log(
            request, web.Response(text="{}"), 0.002)
    (line,) = [r.getMessage() for r in caplog.records]
    assert "139****9000" in line and "13900139000" not in line and "alice" in line
