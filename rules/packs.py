"""Jurisdiction packs: what each policy file (a preset above all) says about itself, where
its figures come from, and when those sources were last checked.

Layout, one ``[pack]`` table per file::

    [pack]
    name = "cn"
    title = "Mainland China"
    checked = 2026-12-02              # the date the sources below were last checked

    [[pack.sources]]
    figure = "no insurance sales calls 21:00-09:00"
    basis = "law"                     # law (a statute or regulator's rule) | practice
    cite = "《人身保险电话销售业务管理办法》(保监发〔2013〕40号)"
    url = "https://..."               # optional

Every problem is reported with its file and line (``PolicyIssue``); nothing here does I/O.
"""

from __future__ import annotations

from datetime import date

from rules.errors import PolicyIssue
from rules.policy_types import Pack, PackSource
from rules.policy_validate import RawItem

BASES = ("law", "practice")
_PACK_KEYS = {"name", "title", "checked", "sources"}
_SOURCE_KEYS = {"figure", "basis", "cite", "url"}


def read_pack(item: RawItem, issues: list[PolicyIssue]) -> Pack | None:
    """One file's ``[pack]`` table, validated; None (and issues) when it is wrong."""
    before = len(issues)

    def err(key: str, message: str) -> None:
        line = item.key_line(key) if item.key_line else 0
        issues.append(PolicyIssue(item.file, line or item.line, f"pack.{key}", message))

    v = item.value
    if not isinstance(v, dict):
        issues.append(PolicyIssue(item.file, item.line, "pack", "must be a table"))
        return None
    for key in sorted(v.keys() - _PACK_KEYS):
        err(key, "unknown key (name, title, checked, sources)")
    name, title, checked = v.get("name"), v.get("title", ""), v.get("checked")
    if not isinstance(name, str) or not name:
        err("name", "must be a non-empty string")
    if not isinstance(title, str):
        err("title", "must be a string")
    if not isinstance(checked, date) or hasattr(checked, "hour"):
        err("checked", "must be a date (checked = 2026-12-02): when the sources were checked")
    sources: list[PackSource] = []
    raw = v.get("sources", [])
    if not isinstance(raw, list):
        err("sources", "use [[pack.sources]] blocks")
        raw = []
    for n, src in enumerate(raw):
        where = f"sources[{n}]"
        if not isinstance(src, dict):
            err(where, "must be a table")
            continue
        for key in sorted(src.keys() - _SOURCE_KEYS):
            err(f"{where}.{key}", "unknown key (figure, basis, cite, url)")
        figure, basis, cite, url = (src.get(k) for k in ("figure", "basis", "cite", "url"))
        if not isinstance(figure, str) or not figure.strip():
            err(f"{where}.figure", "must say which figure or rule this source backs")
        if basis not in BASES:
            err(f"{where}.basis", f"must be law or practice, not {basis!r}")
        if not isinstance(cite, str) or not cite.strip():
            err(f"{where}.cite", "must name the source")
        if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            err(f"{where}.url", "must be an http(s) URL")
        if len(issues) == before:
            sources.append(PackSource(str(figure), str(basis), str(cite), url or ""))
    if len(issues) > before:
        return None
    assert isinstance(name, str) and isinstance(checked, date)
    return Pack(name, str(title), checked, tuple(sources), f"{item.file}:{item.line}")
