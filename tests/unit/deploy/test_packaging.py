"""The wheel and sdist carry what the commands need: the dialplan, the sandbox's
configuration and the SIPp scenarios (installed under <prefix>/share/outguard, found by
``outguard.resources``), the deploy/ files; and the wheel adds no top-level packages but
outguard and the three the design card names (rules, ari_app, agi)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from outguard.resources import LOCATIONS, ResourceMissing, resource_dir

ROOT = Path(__file__).parents[3]
#: the card names these three; everything else lives under outguard/
TOP_LEVEL = {"outguard", "rules", "ari_app", "agi"}


def tree(rel: str, pattern: str = "*") -> set[str]:
    return {str(p.relative_to(ROOT / rel)) for p in (ROOT / rel).rglob(pattern) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "--disable-pip-version-check", "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
         "print(b.build_sdist(sys.argv[1]))", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def test_the_wheel_adds_only_the_top_level_packages_the_card_names(
        built: tuple[Path, Path]) -> None:
    names = zipfile.ZipFile(built[0]).namelist()
    top = {n.split("/")[0] for n in names}
    packages = {t for t in top if not t.endswith((".dist-info", ".data"))}
    assert packages == TOP_LEVEL
    assert "outguard/dashboard/index.html" in names
    assert "rules/presets/demo.toml" in names


def test_the_wheel_carries_the_dialplan_sandbox_config_and_sipp_scenarios(
        built: tuple[Path, Path]) -> None:
    names = set(zipfile.ZipFile(built[0]).namelist())
    data = "outguard-0.1.0.data/data/share/outguard/"
    shipped = {n[len(data):] for n in names if n.startswith(data)}
    assert {f"dialplan/{p}" for p in tree("dialplan")} <= shipped
    assert {f"sipp/{p}" for p in tree("tests/sipp", "*.xml")} <= shipped
    assert {f"deploy/{p}" for p in tree("deploy")} <= shipped


def test_the_sdist_carries_the_source_tree_the_tests_and_run_sh(
        built: tuple[Path, Path]) -> None:
    with tarfile.open(built[1]) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    for rel in ("dialplan", "deploy", "tests/sipp"):
        assert {f"{rel}/{p}" for p in tree(rel) if "__pycache__" not in p} <= names, rel
    assert {"run.sh", "README.md", "pyproject.toml", "MANIFEST.in"} <= names


def test_an_installed_wheel_finds_its_files_without_the_source_tree(
        built: tuple[Path, Path], tmp_path: Path) -> None:
    """Installed into a fresh environment, run from elsewhere: the sandbox templates and
    the SIPp scenarios come from <prefix>/share/outguard."""
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "-q", "--disable-pip-version-check", str(built[0])],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    probe = ("from outguard.resources import resource_dir as r; "
             "print(r('dialplan')); print(r('sipp'))")
    deps = os.pathsep.join(p for p in sys.path if p.endswith("site-packages"))
    done = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={"PYTHONPATH": deps, "PATH": "/usr/bin"})
    assert done.returncode == 0, done.stderr
    dialplan, sipp = map(Path, done.stdout.split())
    assert dialplan == env_dir / "share" / "outguard" / "dialplan"
    assert (dialplan / "sandbox" / "pjsip.conf").is_file()
    assert (sipp / "carrier_answer.xml").is_file()


def test_a_missing_resource_names_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(ResourceMissing) as caught:
        resource_dir("sipp", source=tmp_path / "no-tree", prefix=str(tmp_path / "no-prefix"))
    message = str(caught.value)
    assert str(tmp_path / "no-tree" / "tests" / "sipp") in message
    assert str(tmp_path / "no-prefix" / "share" / "outguard" / "sipp") in message
    assert "reinstall outguard" in message


def test_the_source_tree_wins_over_an_installed_copy(tmp_path: Path) -> None:
    shared = tmp_path / "prefix" / "share" / "outguard" / "dialplan"
    shared.mkdir(parents=True)
    assert resource_dir("dialplan", prefix=str(tmp_path / "prefix")) == ROOT / "dialplan"
    assert resource_dir("dialplan", source=tmp_path / "none",
                        prefix=str(tmp_path / "prefix")) == shared
    assert set(LOCATIONS) == {"dialplan", "sipp"}
