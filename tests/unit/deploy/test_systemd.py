"""The shipped systemd unit (deploy/systemd/): ``systemd-analyze verify`` accepts it, its
EnvironmentFile sample carries exactly the passwords outguard reads from the environment,
and the settings it passes by environment are ones outguard reads."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from outguard.cli import cli
from outguard.config import Settings

ROOT = Path(__file__).parents[3]
UNIT = ROOT / "deploy" / "systemd" / "outguard.service"
ENV_SAMPLE = ROOT / "deploy" / "systemd" / "outguard.env.example"
VENV_OUTGUARD = ROOT / ".venv" / "bin" / "outguard"


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found:
        return found
    reason = "systemd-analyze is missing (Debian's systemd package)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"cannot verify the systemd unit in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def unit_lines(key: str) -> list[str]:
    return re.findall(rf"^{key}=(.*)$", UNIT.read_text(), re.M)


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """With ExecStart pointing at this checkout's outguard (verify checks it exists)."""
    if not VENV_OUTGUARD.exists():
        pytest.skip("no .venv/bin/outguard (run ./run.sh setup)")
    unit = tmp_path / "outguard.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/outguard", str(VENV_OUTGUARD)))
    done = subprocess.run([systemd_analyze(), "verify", str(unit)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stdout + done.stderr


def test_systemd_analyze_verify_rejects_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: an unknown key is reported."""
    unit = tmp_path / "outguard.service"
    unit.write_text(UNIT.read_text().replace("Restart=on-failure", "Restart=on-failure\nRestrat=1"))
    done = subprocess.run([systemd_analyze(), "verify", str(unit)],
                          capture_output=True, text=True, timeout=60)
    assert "Unknown key" in done.stderr


def test_the_environment_file_holds_the_passwords_outguard_reads() -> None:
    (env_file,) = unit_lines("EnvironmentFile")
    assert env_file == "/etc/outguard/outguard.env"
    sample = dict(line.split("=", 1) for line in ENV_SAMPLE.read_text().splitlines()
                  if line and not line.startswith("#"))
    defaults = Settings()
    assert set(sample) == {defaults.ari[0].password_env, defaults.ami[0].password_env}
    assert "password" not in "".join(unit_lines("Environment")).lower()


def test_the_units_environment_is_read_by_outguard(tmp_path: Path) -> None:
    env = dict(line.split("=", 1) for line in unit_lines("Environment"))
    assert set(env) == {"OUTGUARD_CONFIG", "OUTGUARD_STORE", "OUTGUARD_LOG_FORMAT"}
    config = tmp_path / "outguard.toml"
    config.write_text(
        (ROOT / "dialplan" / "samples" / "outguard.toml").read_text(encoding="utf-8"),
        encoding="utf-8")
    store = tmp_path / "state" / "outguard.db"
    store.parent.mkdir()
    env.update(OUTGUARD_CONFIG=str(config), OUTGUARD_STORE=str(store))
    # a write creates the store named by OUTGUARD_STORE; a read then finds the tenant there
    result = CliRunner().invoke(cli, ["tenants", "add", "acme", "ACME"], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert store.exists()  # the store named by OUTGUARD_STORE was used
    result = CliRunner().invoke(cli, ["tenants", "list", "--json"], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "acme" in result.output
    (exec_start,) = unit_lines("ExecStart")
    assert exec_start.split()[1:] == ["serve"]
