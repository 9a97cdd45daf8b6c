"""Which triggers a party's figures cross (pure: figures in, crossings out).

A trigger measures one party (its ``scope``) over its window and acts on that party or its
tenant (its ``target``). It only counts what happened after its last action on the
target (``baseline``): after a suspension by the same trigger started, or after a person
lifted it or an appeal was approved. So an expired suspension is not re-imposed at once
for the same complaints, and marks cleared by an approved mis-mark appeal stay cleared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from outguard.enforcement.policy import METRICS, TriggerSpec
from outguard.enforcement.records import RiskFigures
from outguard.enforcement.risk import Party, RiskBook
from rules.model import PartyKind

Baseline = Callable[[TriggerSpec, Party], float | None]


@dataclass(frozen=True, slots=True)
class Crossing:
    trigger: TriggerSpec
    scope: Party
    target: Party
    value: float
    figures: RiskFigures

    @property
    def message(self) -> str:
        kind, key = self.scope
        return f"{kind.value} {key}: {self.trigger.describe(self.value)}"


def metric_value(spec: TriggerSpec, f: RiskFigures) -> float | None:
    """The trigger's metric, or None when there is too little to judge (``min_calls``)."""
    if spec.metric == "connect_rate":
        calls = f.ended
    elif spec.metric == "short_call_ratio":
        calls = f.answered
    else:
        calls = f.attempts
    if spec.min_calls and calls < spec.min_calls:
        return None
    value = getattr(f, spec.metric)
    if value is None:
        return None
    assert METRICS[spec.metric] or isinstance(value, int)
    return float(value)


def target_of(spec: TriggerSpec, scope: Party, book: RiskBook) -> Party | None:
    if spec.target is spec.scope:
        return scope
    tenant = book.tenant_of(*scope)
    return None if tenant is None else (PartyKind.TENANT, tenant)


def crossings(book: RiskBook, triggers: Iterable[TriggerSpec], now: float,
              candidates: Mapping[PartyKind, Iterable[str]], baseline: Baseline) -> list[Crossing]:
    """Every (trigger, party) among ``candidates`` whose figures cross the threshold."""
    out: list[Crossing] = []
    keys = {kind: tuple(v) for kind, v in candidates.items()}
    for spec in triggers:
        for key in keys.get(spec.scope, ()):
            scope = (spec.scope, key)
            target = target_of(spec, scope, book)
            if target is None:
                continue
            figures = book.figures(spec.scope, key, spec.window_s, now, baseline(spec, target),
                                   reasons=False)
            value = metric_value(spec, figures)
            if value is not None and spec.crossed(value):
                out.append(Crossing(spec, scope, target, value, figures))
    return out
