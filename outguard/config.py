"""outguard's settings, in layers: defaults, then a TOML file, then the environment
(``OUTGUARD_<SECTION>_<KEY>``, e.g. ``OUTGUARD_ARI_URL``), then the command line.

One outguard may attach to several PBXes: ``[[ari]]`` and ``[[ami]]`` (arrays of tables)
list one target each, named by ``pbx``; a single ``[ari]`` / ``[ami]`` table is one target
(the PBX named :data:`DEFAULT_PBX` unless it names another). ``Settings.ari`` and
``Settings.ami`` are always tuples of targets.

Secrets are never written in the file: the file names the environment variable that holds
them (``password_env``), and they are never logged or shown (``Settings.redacted``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ari_app.settings import CallSettings
from outguard.errors import OutguardError
from outguard.live import DEFAULT_PBX


class ConfigError(OutguardError):
    """A setting is missing, malformed or of the wrong type; names the file and key."""

    error_id = "config_error"


#: what a PBX name may be: it goes into the call log, reports and /metrics labels
PBX_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


def check_pbx_name(name: str) -> str:
    """``name`` when it is a valid PBX name; ValueError naming the rule otherwise."""
    if not PBX_NAME.match(name):
        raise ValueError(f"pbx name {name!r} is not 1-32 letters, digits, '_', '.' or '-'"
                         " starting with a letter or digit")
    return name


@dataclass(frozen=True)
class AriConfig:
    enabled: bool = True
    #: the PBX this target is (call log, reports, /metrics); pairs it with the [[ami]]
    #: target of the same name
    pbx: str = DEFAULT_PBX
    url: str = "http://127.0.0.1:8088/ari"
    user: str = "outguard"
    password_env: str = "OUTGUARD_ARI_PASSWORD"
    app: str = "outguard"

    def __post_init__(self) -> None:
        check_pbx_name(self.pbx)

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
    #: the PBX this target is; FastAGI connections from ``host`` are this PBX's when no
    #: other [[ami]] target has the same host (else the AGI URL names it: ``?pbx=NAME``)
    pbx: str = DEFAULT_PBX
    host: str = "127.0.0.1"
    port: int = 5038
    user: str = "outguard"
    password_env: str = "OUTGUARD_AMI_PASSWORD"

    def __post_init__(self) -> None:
        check_pbx_name(self.pbx)

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
    #: this instance's name in the PBX claims (one Asterisk per PBX name) and their
    #: messages; empty = "<host name>:<API port>"
    instance: str = ""

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
    #: the ARI targets, one per PBX ([ari] or [[ari]])
    ari: tuple[AriConfig, ...] = (AriConfig(),)
    agi: AgiConfig = field(default_factory=AgiConfig)
    #: the AMI targets, one per PBX ([ami] or [[ami]])
    ami: tuple[AmiConfig, ...] = (AmiConfig(),)
    api: ApiConfig = field(default_factory=ApiConfig)
    calls: CallSettings = field(default_factory=CallSettings)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def __post_init__(self) -> None:
        # a bare target stands for a tuple of one (Settings(ari=AriConfig(...)))
        for name in _TARGETS:
            value: Any = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, (value,))
        for name in _TARGETS:
            check_targets(getattr(self, name), name)
        if self.cluster.redis:
            for name in _TARGETS:
                check_named(getattr(self, name), name)

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict for display: secrets are only ever env var names."""
        return dataclasses.asdict(self)

    def pbx_names(self) -> list[str]:
        """Every PBX an enabled target names, ARI first, each once."""
        names = [a.pbx for a in self.ari if a.enabled] + [m.pbx for m in self.ami if m.enabled]
        return list(dict.fromkeys(names))

    def ari_target(self, pbx: str | None = None) -> AriConfig:
        """The ARI target of ``pbx`` (None: the only one, else the first); ConfigError
        naming the known PBXes when there is none of that name."""
        for target in self.ari:
            if pbx is None or target.pbx == pbx:
                return target
        known = ", ".join(t.pbx for t in self.ari) or "none"
        raise ConfigError(f"no [[ari]] target for pbx {pbx!r} (known: {known})")


def check_targets(targets: tuple[Any, ...], section: str) -> None:
    """Several targets of one kind: each a valid, distinct PBX name, each a different
    Asterisk address (ValueError naming the entries). A PBX has at most one ARI and one
    AMI target, and one Asterisk is one PBX: two names for it would split its calls and
    figures, and two ARI connections of one application take its calls from each other."""
    seen: dict[str, int] = {}
    addresses: dict[str, int] = {}
    for number, target in enumerate(targets, 1):
        where = f"{section}[{number}]" if len(targets) > 1 else section
        try:
            check_pbx_name(target.pbx)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        if target.pbx in seen:
            raise ValueError(f"{where}: pbx {target.pbx!r} is named by {section}"
                             f"[{seen[target.pbx]}] too; each [[{section}]] target needs a "
                             "pbx name of its own")
        seen[target.pbx] = number
        address = target_address(target)
        if target.enabled and address in addresses:
            raise ValueError(f"{where}: {address} is {section}[{addresses[address]}]'s"
                             f" Asterisk too (pbx {targets[addresses[address] - 1].pbx!r});"
                             f" one Asterisk is one PBX: list it once")
        if target.enabled:
            addresses[address] = number


def target_address(target: Any) -> str:
    """Where a target reaches its Asterisk: the ARI URL, or the AMI host and port."""
    if isinstance(target, AriConfig):
        return target.url.rstrip("/").lower()
    return f"{target.host.lower()}:{target.port}"


def check_named(targets: tuple[Any, ...], section: str) -> None:
    """Cluster mode: every enabled target names its PBX (ValueError naming the entry).
    An unnamed PBX is ``default`` on every instance, and cluster call ids are
    ``<uniqueid>@<pbx>``: two unnamed PBXes would mix their calls."""
    for number, target in enumerate(targets, 1):
        if target.enabled and target.pbx == DEFAULT_PBX:
            where = f"{section}[{number}]" if len(targets) > 1 else section
            raise ValueError(
                f"{where}: cluster mode ([cluster] redis is set) needs each PBX named, with"
                f" a name no other PBX of the cluster has (pbx = \"...\"): unnamed, it is"
                f" {DEFAULT_PBX!r} on every instance, and cluster call ids are"
                f" <uniqueid>@<pbx> (or disable the target: enabled = false)")


_SECTIONS = {"ari": AriConfig, "agi": AgiConfig, "ami": AmiConfig, "api": ApiConfig,
             "calls": CallSettings, "cluster": ClusterConfig}
#: sections that hold one target per PBX: a table, or an array of tables
_TARGETS = ("ari", "ami")


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
        if isinstance(obj, Settings) and key in _TARGETS:
            changes[key] = _targets(current, value, where, key)
        elif dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}.{key}: expected a table")
            changes[key] = _apply(current, value, f"{where}.{key}")
        else:
            changes[key] = _coerce(value, known[key].type, f"{where}.{key}")
    try:
        return replace(obj, **changes)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None


def _targets(current: tuple[Any, ...], value: Any, where: str, section: str) -> tuple[Any, ...]:
    """``[ari]`` (a table: changes to the one target there is) or ``[[ari]]`` (an array of
    tables: the targets, each from the defaults). Errors name the entry: ``ari[2]``."""
    if isinstance(value, Mapping):
        if len(current) > 1:
            raise ConfigError(f"{where}: {section}: {len(current)} [[{section}]] targets are "
                              "set; change them in the settings file, one by one")
        return (_apply(current[0], value, f"{where}.{section}"),)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}.{section}: expected a table ([{section}]) or an array "
                          f"of tables ([[{section}]])")
    targets = []
    for number, item in enumerate(value, 1):
        entry = f"{where}: {section}[{number}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{entry}: expected a table")
        if len(value) > 1 and "pbx" not in item:
            raise ConfigError(f"{entry}: several [[{section}]] targets: each needs a pbx "
                              'name (pbx = "...")')
        targets.append(_apply(_SECTIONS[section](), item, entry))
    return tuple(targets)


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
