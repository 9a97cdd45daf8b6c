"""Caller-ID health: the early warning when a caller ID's connect rate drops sharply
against its own history, and the remediation task it opens (pure: figures in, verdict out).

Why: when callees' phones and the marking platforms (360 手机卫士, 腾讯手机管家, 百度号码认证,
搜狗号码通, 电话邦 in China; the analytics engines behind "Spam Likely" in the US) start
labelling a number as harassment, the first thing a call centre sees is that fewer callees
answer calls from it, days before anyone reports the label. The remedy is to slow down and
fix the number's standing (number authentication, 号码认证; a mis-mark appeal, 标记申诉,
with evidence), never to switch to another number: outguard does not rotate caller IDs.

The judgement compares the caller ID's connect rate (``outguard.figures.connect_rate``,
the one definition) over the last ``window`` with its rate over the ``baseline`` before
that window. It warns only when both periods have enough ended calls (a quiet number
cannot trip it), the rate fell by at least ``drop`` of the baseline (relative) and by at
least ``min_points`` (absolute), so a number whose rate was always low does not warn.
"""

from __future__ import annotations

from dataclasses import dataclass

from outguard.enforcement.records import RiskFigures

__all__ = ["HealthSpec", "Drop", "judge", "REMEDIATION_STEPS", "HEALTH_ACTOR"]

#: the actor of the audit records and tasks the detector writes
HEALTH_ACTOR = "health:connect_rate_drop"

#: what the remediation task asks the operator to do (shown by the CLI, API, dashboard);
#: nothing here changes the caller ID
REMEDIATION_STEPS: tuple[str, ...] = (
    "Find out which marking platforms label the number, and how: call a few test phones "
    "with different security apps (360 手机卫士, 腾讯手机管家, 百度手机卫士, 搜狗号码通, 电话邦) "
    "or use the platforms' look-up services.",
    "Number authentication (号码认证): register the number with the marking platforms' "
    "enterprise number services and the carrier, with the business licence and the "
    "number's allocation certificate.",
    "Mis-mark appeal (标记申诉): where the label is wrong, appeal to each platform with "
    "evidence (business licence, proof the tenant owns the number, call records); "
    "platforms review within a few working days.",
    "Review what the number has been doing: lists, calling hours, call frequency per "
    "callee, short calls, complaints. The throttle stays until the task is closed.",
)


@dataclass(frozen=True, slots=True)
class HealthSpec:
    """``[enforcement.caller_id_health]``; the defaults are the documented practice."""

    enabled: bool = True
    window_s: float = 86400.0  # the recent period judged
    baseline_s: float = 7 * 86400.0  # the caller ID's own history just before the window
    min_calls: int = 50  # ended calls in the window before judging
    min_baseline_calls: int = 200  # ended calls in the baseline before judging
    drop: float = 0.3  # relative fall of the connect rate that warns (0.3 = 30%)
    min_points: float = 0.05  # and the absolute fall (0.05 = 5 percentage points)
    cap_factor: float = 0.5  # caller-ID caps are multiplied by this while a task is open

    @property
    def span_s(self) -> float:
        """How far back the judgement reads (the risk figures keep at least this)."""
        return self.window_s + self.baseline_s


@dataclass(frozen=True, slots=True)
class Drop:
    """A sharp fall of one caller ID's connect rate: what the warning says."""

    caller_id: str
    rate: float
    baseline_rate: float
    recent: RiskFigures
    baseline: RiskFigures

    @property
    def relative_drop(self) -> float:
        return 1.0 - self.rate / self.baseline_rate

    def message(self, spec: HealthSpec) -> str:
        from outguard.enforcement.policy import _human  # policy imports this module

        window = f"{spec.window_s / 3600:g}h" if spec.window_s <= 2 * 86400 \
            else _human(spec.window_s)
        return (f"connect rate {self.rate:.1%} over the last {window} "
                f"({self.recent.answered}/{self.recent.ended} ended calls) against "
                f"{self.baseline_rate:.1%} over the {_human(spec.baseline_s)} before "
                f"({self.baseline.answered}/{self.baseline.ended}): down "
                f"{self.relative_drop:.0%}, the usual sign that callees' phones now mark "
                f"the number as harassment")

    def to_dict(self) -> dict[str, object]:
        return {
            "rate": self.rate, "baseline_rate": self.baseline_rate,
            "relative_drop": round(self.relative_drop, 4),
            "recent": {"ended": self.recent.ended, "answered": self.recent.answered,
                       "attempts": self.recent.attempts,
                       "short_call_ratio": self.recent.short_call_ratio,
                       "complaints": self.recent.complaints, "marks": self.recent.marks},
            "baseline": {"ended": self.baseline.ended, "answered": self.baseline.answered,
                         "attempts": self.baseline.attempts},
        }


def judge(spec: HealthSpec, recent: RiskFigures, baseline: RiskFigures) -> Drop | None:
    """A ``Drop`` when the recent connect rate fell sharply against the baseline, else
    None (also when either period has too few ended calls to judge)."""
    if not spec.enabled:
        return None
    if recent.ended < spec.min_calls or baseline.ended < spec.min_baseline_calls:
        return None
    rate, base = recent.connect_rate, baseline.connect_rate
    if rate is None or base is None or base <= 0:
        return None
    if rate <= base * (1.0 - spec.drop) and base - rate >= spec.min_points:
        return Drop(recent.key, rate, base, recent, baseline)
    return None
