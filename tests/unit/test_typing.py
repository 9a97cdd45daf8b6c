"""The code type-checks: mypy strict on every package (pyproject), no exception."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_mypy_passes_on_every_package(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"),
         "rules", "outguard", "ari_app", "agi"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_pyproject_holds_every_package_to_strict() -> None:
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert mypy.get("strict") is True
    loosened = [o for o in mypy.get("overrides", [])
                if set(o) - {"module", "ignore_missing_imports"}]
    assert loosened == [], "only third-party stubs may be overridden"


def test_the_async_store_facade_is_typed_method_by_method() -> None:
    from outguard.store.aio import AsyncStore

    assert "__getattr__" not in AsyncStore.__dict__  # every call returns its real type
