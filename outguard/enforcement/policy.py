"""The policy's ``[enforcement]`` table: triggers, graded durations, marks, caller-ID
verification, webhooks. Validated here, every problem collected with file, line and key.

::

    [enforcement]
    durations = ["24h", "7d", "30d", "permanent"]  # graded: 1st, 2nd, 3rd, 4th+ strike
    strike_lookback = "180d"     # strikes older than this are forgotten
    short_call_s = 6             # answered calls shorter than this are "short"
    evaluate_every_ms = 500      # debounce of the background trigger evaluation
    complaint_list = true        # a complaint puts the callee on complaints-<tenant>

    [enforcement.triggers.two_complaints]
    metric = "complaints"        # see METRICS
    scope = "account"            # whose figures: account | caller_id | tenant
    window = "7d"
    at_least = 2                 # or: above = x / below = x (exactly one)
    min_calls = 0                # ratios: minimum calls (answered / ended) before judging
    action = "suspend"           # warn | suspend | disable
    target = "tenant"            # who is suspended: the scope party (default) or its tenant
    duration = "24h"             # optional fixed duration; default: the graded step

    [enforcement.verification]   # caller IDs without valid real-name verification
    suspend = true
    disable_after = "90d"
    sweep_every = "1h"

    [enforcement.caller_id_health]  # the connect-rate early warning (health.py)
    enabled = true
    window = "24h"               # the recent period judged
    baseline = "7d"              # against the caller ID's own history before it
    min_calls = 50               # ended calls in the window before judging
    min_baseline_calls = 200     # ended calls in the baseline before judging
    drop = 0.3                   # warn when the rate fell by 30% of the baseline ...
    min_points = 0.05            # ... and by at least 5 points
    cap_factor = 0.5             # caller-ID caps x 0.5 while the remediation task is open

    [enforcement.complaint_deadlines]  # deadlines of regulators' channels (deadline_settings.py)
    warn_days = 45

    [enforcement.webhooks]
    urls = ["https://ops.example/outguard"]
    secret_env = "OUTGUARD_WEBHOOK_SECRET"
    timeout_s = 5
    max_attempts = 5
    queue_size = 1000
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from outguard.enforcement.deadline_settings import TOP as DEADLINES
from outguard.enforcement.deadline_settings import read_deadlines
from outguard.enforcement.deadlines import Deadlines, default_deadlines
from outguard.enforcement.health import HealthSpec
from rules.errors import PolicyError, PolicyIssue
from rules.model import PartyKind
from rules.policy_types import Policy

__all__ = [
    "METRICS", "EnforcementPolicy", "TriggerSpec", "VerificationSpec", "WebhookSpec",
    "parse_duration", "validate_enforcement",
]

#: metric -> True when it is a ratio (needs min_calls, compared as a fraction 0..1)
METRICS: Mapping[str, bool] = {
    "attempts": False, "allowed": False, "blocked": False, "answered": False,
    "listed_blocks": False, "short_calls": False, "complaints": False, "marks": False,
    "connect_rate": True, "short_call_ratio": True,
}
ACTIONS = ("warn", "suspend", "disable")
SCOPES = tuple(k.value for k in PartyKind)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
PERMANENT = "permanent"
DEFAULT_SECRET_ENV = "OUTGUARD_WEBHOOK_SECRET"


def parse_duration(value: object) -> float:
    """ "24h" / "7d" / "90m" / "30s" / "2w", or a number of seconds. ValueError if bad."""
    if isinstance(value, bool):
        raise ValueError("a duration, e.g. \"24h\" or \"7d\"")
    if isinstance(value, (int, float)) and value > 0 and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m and float(m.group(1)) > 0:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"{value!r} is not a duration (e.g. \"24h\", \"7d\", \"30m\")")


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    name: str
    metric: str
    scope: PartyKind
    window_s: float
    op: str  # ">=" | ">" | "<"
    threshold: float
    action: str = "suspend"
    target: PartyKind = PartyKind.ACCOUNT
    min_calls: int = 0
    duration_s: float | None = None  # None: graded
    source: str = ""

    @property
    def rolling(self) -> bool:
        """Whether time alone can make it cross (a ratio, or a floor): counts with
        at_least/above only fall as events leave the window."""
        return METRICS[self.metric] or self.op == "<"

    def crossed(self, value: float) -> bool:
        if self.op == ">=":
            return value >= self.threshold
        if self.op == ">":
            return value > self.threshold
        return value < self.threshold

    def describe(self, value: float) -> str:
        shown = f"{value:.0%}" if METRICS[self.metric] else f"{value:g}"
        limit = f"{self.threshold:.0%}" if METRICS[self.metric] else f"{self.threshold:g}"
        return (f"{self.metric.replace('_', ' ')} {shown} {self.op} {limit} within "
                f"{_human(self.window_s)} (trigger {self.name})")


@dataclass(frozen=True, slots=True)
class VerificationSpec:
    suspend: bool = False
    disable_after_s: float = 90 * 86400.0
    sweep_every_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    urls: tuple[str, ...] = ()
    secret_env: str = DEFAULT_SECRET_ENV
    timeout_s: float = 5.0
    max_attempts: int = 5
    backoff_s: float = 0.5
    queue_size: int = 1000


@dataclass(frozen=True, slots=True)
class EnforcementPolicy:
    durations: tuple[float | None, ...] = (86400.0, 7 * 86400.0, 30 * 86400.0, None)
    strike_lookback_s: float = 365 * 86400.0
    short_call_s: float = 6.0
    evaluate_every_ms: int = 500
    complaint_list: bool = True
    triggers: tuple[TriggerSpec, ...] = ()
    verification: VerificationSpec = field(default_factory=VerificationSpec)
    webhooks: WebhookSpec = field(default_factory=WebhookSpec)
    health: HealthSpec = field(default_factory=HealthSpec)
    #: complaint deadlines: channels and calendars ([enforcement.complaint_deadlines])
    deadlines: Deadlines = field(default_factory=default_deadlines)

    def duration_for(self, strikes: int) -> float | None:
        """The graded duration of the suspension after ``strikes`` earlier strikes."""
        return self.durations[min(strikes, len(self.durations) - 1)]

    @property
    def longest_window_s(self) -> float:
        return max([7 * 86400.0, *(t.window_s for t in self.triggers),
                    self.health.span_s if self.health.enabled else 0.0])


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class _Lines:
    """Lines of headers and keys in the files the [enforcement] table came from."""

    def __init__(self, texts: Mapping[str, str] | None = None) -> None:
        self._files: dict[str, list[str]] = {
            name: text.splitlines() for name, text in (texts or {}).items()}

    def _text(self, file: str) -> list[str]:
        if file not in self._files:
            try:
                self._files[file] = Path(file).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                self._files[file] = []
        return self._files[file]

    def find(self, file: str, header: str, key: str | None = None) -> int:
        lines = self._text(file)
        start = None
        dotted = r"\s*\.\s*".join(re.escape(part) for part in header.split("."))
        head = re.compile(r"^\s*\[\s*" + dotted + r"\s*\]")
        for i, line in enumerate(lines):
            if head.match(line):
                start = i
                break
        if start is None:
            return 0
        if key is None:
            return start + 1
        pat = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for i in range(start + 1, len(lines)):
            if lines[i].lstrip().startswith("["):
                break
            if pat.match(lines[i]):
                return i + 1
        return start + 1


class _Ctx:
    def __init__(self, policy: Policy, texts: Mapping[str, str] | None = None) -> None:
        self.origin = policy.enforcement_origin
        self.issues: list[PolicyIssue] = []
        self.lines = _Lines(texts)

    def err(self, top: str, message: str, sub: str | None = None, key: str | None = None) -> None:
        """An issue under [enforcement] key ``top`` (table ``sub`` inside it, ``key``)."""
        file, line = self.origin.get(top, (self.origin_file(), 0))
        found = 0
        if sub is not None:
            found = self.lines.find(file, f"enforcement.{top}.{sub}", key)
        elif key is not None:
            found = self.lines.find(file, f"enforcement.{top}", key)
        dotted = ".".join(p for p in ("enforcement", top, sub, key) if p)
        self.issues.append(PolicyIssue(file, found or line, dotted, message))

    def origin_file(self) -> str:
        return next(iter(self.origin.values()), ("<policy>", 0))[0]


def validate_enforcement(policy: Policy,
                         texts: Mapping[str, str] | None = None) -> EnforcementPolicy:
    """The typed ``[enforcement]`` table of a policy; ``PolicyError`` lists every problem.

    Call it before swapping a policy in: on error the previous one stays in use. Issues
    name lines of the policy's files; ``texts`` gives the text of sources that are not
    files (``{"<request>": text}``)."""
    ctx = _Ctx(policy, texts)
    raw = dict(policy.enforcement)
    out: dict[str, Any] = {}
    if "durations" in raw:
        out["durations"] = _durations(ctx, raw.pop("durations"))
    for name, target in (("strike_lookback", "strike_lookback_s"),):
        if name in raw:
            out[target] = _dur(ctx, name, raw.pop(name))
    if "short_call_s" in raw:
        value = raw.pop("short_call_s")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            ctx.err("short_call_s", "must be a positive number of seconds")
        else:
            out["short_call_s"] = float(value)
    if "evaluate_every_ms" in raw:
        value = raw.pop("evaluate_every_ms")
        if isinstance(value, bool) or not isinstance(value, int) or not 10 <= value <= 600_000:
            ctx.err("evaluate_every_ms", "must be an integer from 10 to 600000")
        else:
            out["evaluate_every_ms"] = value
    if "complaint_list" in raw:
        value = raw.pop("complaint_list")
        if not isinstance(value, bool):
            ctx.err("complaint_list", "must be true or false")
        else:
            out["complaint_list"] = value
    if "triggers" in raw:
        out["triggers"] = _triggers(ctx, raw.pop("triggers"))
    if "verification" in raw:
        out["verification"] = _verification(ctx, raw.pop("verification"))
    if "webhooks" in raw:
        out["webhooks"] = _webhooks(ctx, raw.pop("webhooks"))
    if HEALTH in raw:
        out["health"] = _health(ctx, raw.pop(HEALTH))
    if DEADLINES in raw:
        file, line = ctx.origin.get(DEADLINES, (ctx.origin_file(), 0))
        out["deadlines"] = read_deadlines(ctx, raw.pop(DEADLINES), policy.calendars,
                                          f"{file}:{line}")
    elif policy.calendars:
        out["deadlines"] = Deadlines(calendars=policy.calendars)
    for key in raw:
        ctx.err(key, "unknown key (known: durations, strike_lookback, short_call_s, "
                "evaluate_every_ms, complaint_list, triggers, verification, webhooks, "
                f"{HEALTH}, {DEADLINES})")
    if ctx.issues:
        raise PolicyError(ctx.issues)
    return EnforcementPolicy(**out)


def _dur(ctx: _Ctx, top: str, value: object, sub: str | None = None,
         key: str | None = None) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        ctx.err(top, str(exc), sub, key)
        return 1.0


def _durations(ctx: _Ctx, value: object) -> tuple[float | None, ...]:
    if not isinstance(value, list) or not value:
        ctx.err("durations", "must be a non-empty list like [\"24h\", \"7d\", \"permanent\"]")
        return (None,)
    out: list[float | None] = []
    for i, item in enumerate(value):
        if item == PERMANENT:
            if i != len(value) - 1:
                ctx.err("durations", "\"permanent\" can only be the last step")
            out.append(None)
            continue
        try:
            out.append(parse_duration(item))
        except ValueError as exc:
            ctx.err("durations", f"step {i + 1}: {exc}")
    return tuple(out)


def _triggers(ctx: _Ctx, value: object) -> tuple[TriggerSpec, ...]:
    if not isinstance(value, dict):
        ctx.err("triggers", "must be a table of [enforcement.triggers.<name>] tables")
        return ()
    out = []
    for name, item in value.items():
        if not isinstance(item, dict):
            ctx.err("triggers", "must be a table", name)
            continue
        spec = _trigger(ctx, name, item)
        if spec is not None:
            out.append(spec)
    return tuple(out)


_TRIGGER_KEYS = {"metric", "scope", "window", "at_least", "above", "below", "min_calls",
                 "action", "target", "duration"}


def _trigger(ctx: _Ctx, name: str, v: dict[str, Any]) -> TriggerSpec | None:
    before = len(ctx.issues)

    def err(key: str | None, message: str) -> None:
        ctx.err("triggers", message, name, key)

    for key in v.keys() - _TRIGGER_KEYS:
        err(key, f"unknown key (known: {', '.join(sorted(_TRIGGER_KEYS))})")
    metric = v.get("metric")
    if not isinstance(metric, str) or metric not in METRICS:
        err("metric", f"{metric!r} is not one of: {', '.join(METRICS)}")
    scope = v.get("scope", "account")
    if scope not in SCOPES:
        err("scope", f"{scope!r} is not one of: {', '.join(SCOPES)}")
    window = _dur(ctx, "triggers", v.get("window", "24h"), name, "window")
    ops = [(k, o) for k, o in (("at_least", ">="), ("above", ">"), ("below", "<")) if k in v]
    threshold, op = 0.0, ">="
    if len(ops) != 1:
        err(None, "give exactly one threshold: at_least, above or below")
    else:
        key, op = ops[0]
        raw = v[key]
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 0:
            err(key, "must be a number >= 0")
        elif isinstance(metric, str) and METRICS.get(metric) and raw > 1:
            err(key, "a ratio threshold is a fraction from 0 to 1 (0.6 = 60%)")
        else:
            threshold = float(raw)
    min_calls = v.get("min_calls", 0)
    if isinstance(min_calls, bool) or not isinstance(min_calls, int) or min_calls < 0:
        err("min_calls", "must be an integer >= 0")
        min_calls = 0
    action = v.get("action", "suspend")
    if action not in ACTIONS:
        err("action", f"{action!r} is not one of: {', '.join(ACTIONS)}")
    target = v.get("target", scope)
    if target not in SCOPES:
        err("target", f"{target!r} is not one of: {', '.join(SCOPES)}")
    elif target not in (scope, "tenant"):
        err("target", f"a {scope} trigger can suspend the {scope} itself or its tenant")
    duration = None
    if "duration" in v:
        if action != "suspend":
            err("duration", "only a suspend action takes a duration")
        elif v["duration"] != "graded":
            duration = _dur(ctx, "triggers", v["duration"], name, "duration")
    if len(ctx.issues) > before:
        return None
    file, line = ctx.origin.get("triggers", ("", 0))
    line = ctx.lines.find(file, f"enforcement.triggers.{name}") or line
    assert isinstance(metric, str)
    return TriggerSpec(name, metric, PartyKind(scope), window, op, threshold, action,
                       PartyKind(target), min_calls, duration, f"{file}:{line}")


def _verification(ctx: _Ctx, v: object) -> VerificationSpec:
    if not isinstance(v, dict):
        ctx.err("verification", "must be a table")
        return VerificationSpec()
    for key in v.keys() - {"suspend", "disable_after", "sweep_every"}:
        ctx.err("verification", "unknown key (known: suspend, disable_after, sweep_every)",
                None, key)
    suspend = v.get("suspend", True)
    if not isinstance(suspend, bool):
        ctx.err("verification", "must be true or false", None, "suspend")
        suspend = False
    return VerificationSpec(
        suspend=suspend,
        disable_after_s=_dur(ctx, "verification", v.get("disable_after", "90d"), None,
                             "disable_after"),
        sweep_every_s=_dur(ctx, "verification", v.get("sweep_every", "1h"), None,
                           "sweep_every"),
    )


def _webhooks(ctx: _Ctx, v: object) -> WebhookSpec:
    if not isinstance(v, dict):
        ctx.err("webhooks", "must be a table")
        return WebhookSpec()
    known = {"urls", "secret_env", "timeout_s", "max_attempts", "backoff_s", "queue_size"}
    for key in v.keys() - known:
        ctx.err("webhooks", f"unknown key (known: {', '.join(sorted(known))})", None, key)
    urls = v.get("urls", [])
    if not isinstance(urls, list) or not all(
        isinstance(u, str) and re.match(r"^https?://", u) for u in urls
    ):
        ctx.err("webhooks", "must be a list of http(s) URLs", None, "urls")
        urls = []
    secret_env = v.get("secret_env", DEFAULT_SECRET_ENV)
    if not isinstance(secret_env, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", secret_env):
        ctx.err("webhooks", "must name an environment variable (the secret itself never "
                "goes in the policy)", None, "secret_env")
        secret_env = DEFAULT_SECRET_ENV
    nums: dict[str, Any] = {}
    for key, kind, low in (("timeout_s", float, 0.1), ("max_attempts", int, 1),
                           ("backoff_s", float, 0.0), ("queue_size", int, 1)):
        if key not in v:
            continue
        raw = v[key]
        ok = not isinstance(raw, bool) and isinstance(raw, (int, float) if kind is float else int)
        if not ok or raw < low:
            ctx.err("webhooks", f"must be a number >= {low}", None, key)
        else:
            nums[key] = kind(raw)
    return WebhookSpec(urls=tuple(urls), secret_env=secret_env, **nums)


HEALTH = "caller_id_health"
_HEALTH_KEYS = ("enabled", "window", "baseline", "min_calls", "min_baseline_calls", "drop",
                "min_points", "cap_factor")


def _health(ctx: _Ctx, v: object) -> HealthSpec:
    """``[enforcement.caller_id_health]``: every key optional (defaults in HealthSpec)."""
    if not isinstance(v, dict):
        ctx.err(HEALTH, "must be a table")
        return HealthSpec()
    for key in v.keys() - set(_HEALTH_KEYS):
        ctx.err(HEALTH, f"unknown key (known: {', '.join(_HEALTH_KEYS)})", None, key)
    out: dict[str, Any] = {}
    if "enabled" in v:
        if not isinstance(v["enabled"], bool):
            ctx.err(HEALTH, "must be true or false", None, "enabled")
        else:
            out["enabled"] = v["enabled"]
    for key, target in (("window", "window_s"), ("baseline", "baseline_s")):
        if key in v:
            out[target] = _dur(ctx, HEALTH, v[key], None, key)
    for key in ("min_calls", "min_baseline_calls"):
        if key in v:
            raw = v[key]
            if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
                ctx.err(HEALTH, "must be an integer >= 1 (a quiet number must not trip "
                        "the warning)", None, key)
            else:
                out[key] = raw
    for key, low, high, what in (
        ("drop", 0.0, 1.0, "a fraction of the baseline rate, above 0 and below 1 (0.3 = 30%)"),
        ("min_points", 0.0, 1.0, "a fraction from 0 to 1 (0.05 = 5 percentage points)"),
        ("cap_factor", 0.0, 1.0, "a fraction above 0 and at most 1 (0.5 = half the cap)"),
    ):
        if key not in v:
            continue
        raw = v[key]
        ok = not isinstance(raw, bool) and isinstance(raw, (int, float))
        if key == "drop":
            ok = ok and low < raw < high
        elif key == "min_points":
            ok = ok and low <= raw <= high
        else:
            ok = ok and low < raw <= high
        if not ok:
            ctx.err(HEALTH, f"must be {what}", None, key)
        else:
            out[key] = float(raw)
    return HealthSpec(**out)
