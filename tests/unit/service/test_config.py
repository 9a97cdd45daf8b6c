from __future__ import annotations

from pathlib import Path

import pytest

from outguard import config

SAMPLE = Path(__file__).parents[3] / "dialplan" / "samples" / "outguard.toml"


def test_the_documented_sample_settings_file_states_exactly_the_defaults() -> None:
    assert config.load(SAMPLE, env={}) == config.Settings()


def test_layers_apply_in_order_file_then_environment_then_command_line(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('store = "a.db"\n[ari]\nurl = "http://file/ari"\napp = "fromfile"\n')
    settings = config.load(
        path,
        env={"OUTGUARD_ARI_URL": "http://env/ari", "OUTGUARD_CALLS_FAIL_MODE": "open",
             "OUTGUARD_ARI_PASSWORD": "never-a-setting", "OUTGUARD_CACHE": "/x"},
        overrides={"store": "cli.db"},
    )
    assert settings.store == "cli.db"
    assert settings.ari[0].url == "http://env/ari"
    assert settings.ari[0].app == "fromfile"
    assert settings.calls.fail_mode == "open"


def test_password_comes_only_from_the_named_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_ARI_SECRET", "s3cret")
    settings = config.load(env={"OUTGUARD_ARI_PASSWORD_ENV": "MY_ARI_SECRET"})
    assert settings.ari[0].password == "s3cret"
    assert "s3cret" not in repr(settings.redacted())


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("[ari]\nport = 1\n", "unknown setting 'port'", id="unknown-key"),
        pytest.param("[agi]\nport = \"x\"\n", "agi.port", id="wrong-type"),
        pytest.param("[calls]\nfail_mode = \"maybe\"\n", "fail_mode must be", id="bad-choice"),
        pytest.param("[calls]\nfail_cause = 300\n", "Q.850", id="bad-cause"),
        pytest.param("store = [1\n", "s.toml", id="broken-toml"),
        pytest.param("ari = 3\n", "expected a table", id="section-not-a-table"),
    ],
)
def test_bad_settings_name_the_file_and_key(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(config.ConfigError) as err:
        config.load(path, env={})
    assert fragment in str(err.value)


def test_bad_environment_value_is_named() -> None:
    with pytest.raises(config.ConfigError, match="environment.api.port"):
        config.load(env={"OUTGUARD_API_PORT": "eighty"})


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(tmp_path / "absent.toml", env={})
