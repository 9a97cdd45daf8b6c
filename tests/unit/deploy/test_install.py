"""After ``./run.sh setup`` (which ``./run.sh test`` runs first) ``outguard`` is on the
PATH and is this checkout's."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]


def test_outguard_is_on_the_path_after_setup() -> None:
    found = shutil.which("outguard", path="/usr/local/bin:/usr/bin:/bin")
    if found is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("./run.sh setup did not put outguard on the PATH", pytrace=False)
        pytest.skip("outguard is not on the PATH (run ./run.sh setup)")
    assert Path(found).resolve().name == "outguard"
    done = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "version" in done.stdout, done.stderr


def test_run_sh_links_the_venvs_outguard_into_the_path() -> None:
    text = (ROOT / "run.sh").read_text()
    assert 'ln -sfn "$PWD/.venv/bin/outguard" "$BIN_DIR/outguard"' in text
    assert text.index("ln -sfn") > text.index("pip install")
