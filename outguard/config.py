"""outguard's settings, in layers: defaults, then a TOML file, then the environment
(``OUTGUARD_<SECTION>_<KEY>``, e.g. ``OUTGUARD_ARI_URL``), then the command line.

Secrets are never written in the file: the file names the environment variable that holds
them (``password_env``), and they are never logged or shown (``Settings.redacted``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ari_app.settings import CallSettings
from outguard.errors import OutguardError


class ConfigError(OutguardError):
    """A setting is missing, malformed or of the wrong type; names the file and key."""

    error_id = "config_error"


@dataclass(frozen=True)
class AriConfig:
    enabled: bool = True
    url: str = "http://127.0.0.1:8088/ari"
    user: str = "outguard"
    password_env: str = "OUTGUARD_ARI_PASSWORD"
    app: str = "outguard"

    @property
    def password(self) -> str:
        return os.environ.get(self.password_env, "")


@dataclass(frozen=True)
class AgiConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 4573


@dataclass(frozen=True)
class AmiConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 5038
    user: str = "outguard"
    password_env: str = "OUTGUARD_AMI_PASSWORD"

    @property
    def password(self) -> str:
        return os.environ.get(self.password_env, "")


@dataclass(frozen=True)
class ApiConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8470
    #: show full numbers in the dashboard, API listings and logs (off: 138****8000)
    show_numbers: bool = False
    max_body_bytes: int = 64 * 1024 * 1024
    #: heavy requests (policy checks, reports, imports, exports, dry runs) running at once,
    #: per token and in all; more wait in a short queue (max_work_queue_per_token, at most
    #: max_work_wait_s seconds), past that they get 429 with Retry-After
    max_work_per_token: int = 1
    max_work: int = 4
    max_work_queue_per_token: int = 8
    max_work_wait_s: float = 10.0
    #: live-event streams (/api/events) open at once, per token and in all; more get 429
    max_streams_per_token: int = 4
    max_streams: int = 32


@dataclass(frozen=True)
class ClusterConfig:
    """Cluster mode's shared counters (README "Cluster mode")."""

    #: Redis / Valkey URL (redis://host:6379/0) holding every instance's caps and
    #: live-call slots; empty = caps counted in this process's memory (embedded mode)
    redis: str = ""
    #: key prefix: instances with the same prefix share their counts
    prefix: str = "og:"
    #: a live-call slot lasts this long unless its instance refreshes it (every third of
    #: it): the calls of an instance killed stop counting after at most this long
    slot_ttl_s: float = 7200.0
    #: the reservation's round-trip budget; past it the caps' failure policy applies
    timeout_ms: float = 250.0

    def __post_init__(self) -> None:
        if self.redis and not self.redis.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"cluster.redis: {self.redis!r} is not a redis://, rediss:// or"
                             " unix:// URL")
        if self.slot_ttl_s < 3 or self.timeout_ms <= 0:
            raise ValueError("cluster.slot_ttl_s must be >= 3 and cluster.timeout_ms > 0")


@dataclass(frozen=True)
class Settings:
    store: str = "outguard.db"
    #: where call-log rows wait while the store refuses writes (read-only, disk full);
    #: empty = "<store>.spool" beside the store. Put it on another disk than the store.
    spool_dir: str = ""
    #: policy file; empty = the embedded demo policy
    policy: str = ""
    #: the only directory whose files a policy sent over the API (POST
    #: /api/policy/validate) may include; empty = presets only
    policy_dir: str = ""
    default_tenant: str = "default"
    ari: AriConfig = field(default_factory=AriConfig)
    agi: AgiConfig = field(default_factory=AgiConfig)
    ami: AmiConfig = field(default_factory=AmiConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    calls: CallSettings = field(default_factory=CallSettings)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict for display: secrets are only ever env var names."""
        return dataclasses.asdict(self)


_SECTIONS = {"ari": AriConfig, "agi": AgiConfig, "ami": AmiConfig, "api": ApiConfig,
             "calls": CallSettings, "cluster": ClusterConfig}


def _coerce(value: Any, kind: Any, where: str) -> Any:
    target = {"bool": bool, "int": int, "float": float, "str": str}.get(
        kind if isinstance(kind, str) else getattr(kind, "__name__", ""), str
    )
    if isinstance(value, str) and target is not str:
        text = value.strip().lower()
        try:
            if target is bool:
                if text not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(text)
                return text in ("1", "true", "yes", "on")
            return target(text)
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not a {target.__name__}") from None
    if target is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, target) or (target is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {target.__name__}, got {value!r}")
    return value


def _apply(obj: Any, data: Mapping[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown setting {key!r} (known: {', '.join(known)})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}.{key}: expected a table")
            changes[key] = _apply(current, value, f"{where}.{key}")
        else:
            changes[key] = _coerce(value, known[key].type, f"{where}.{key}")
    try:
        return replace(obj, **changes)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None


def load(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults, then the file at ``path``, then ``OUTGUARD_*`` variables, then overrides
    (a nested dict, e.g. from the command line)."""
    settings = Settings()
    if path:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as err:
            raise ConfigError(f"{p}: cannot read: {err.strerror}") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{p}: {err}") from None
        settings = _apply(settings, data, str(p))
    env = os.environ if env is None else env
    from_env: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith("OUTGUARD_") or name.endswith("_PASSWORD"):
            continue
        parts = name[len("OUTGUARD_"):].lower().split("_", 1)
        if parts[0] in _SECTIONS and len(parts) == 2:
            section = _SECTIONS[parts[0]]
            if parts[1] in {f.name for f in fields(section)}:
                from_env.setdefault(parts[0], {})[parts[1]] = value
        elif "_".join(parts) in {f.name for f in fields(Settings)} - set(_SECTIONS):
            from_env["_".join(parts)] = value
    settings = _apply(settings, from_env, "environment")
    if overrides:
        settings = _apply(settings, overrides, "command line")
    assert isinstance(settings, Settings)
    return settings
