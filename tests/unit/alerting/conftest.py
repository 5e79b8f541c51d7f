"""Lifecycle fixtures: a hand-driven clock and conditions whose series the test sets."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.model import Alert, AlertEvent, AlertRule
from otel_botmon.alerting.store import AlertStore

T0 = 1_700_000_000.0


class Clock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass(frozen=True)
class FakeSample:
    labels: Mapping[str, str]
    value: float


class FakeCondition:
    """``<series value> <op> <threshold>`` over values the test sets per label set."""

    def __init__(self, comparison: str | None = ">", threshold: float = 0.0) -> None:
        self.comparison = comparison
        self.threshold = threshold
        self.series: dict[tuple[tuple[str, str], ...], float] = {}
        self.raise_error: Exception | None = None
        self.values_calls = 0

    def set(self, value: float | None, **labels: str) -> None:
        key = tuple(sorted((k.replace("__", "."), v) for k, v in labels.items()))
        if value is None:
            self.series.pop(key, None)
        else:
            self.series[key] = value

    def values(self, history: Any, now: float) -> list[FakeSample]:
        self.values_calls += 1
        if self.raise_error is not None:
            raise self.raise_error
        return [FakeSample(dict(k), v) for k, v in self.series.items()]

    def evaluate(self, history: Any, now: float) -> list[FakeSample]:
        ops: dict[str | None, Callable[[float, float], bool]] = {
            ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
            "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
            None: lambda a, b: a != 0,
        }
        holds = ops[self.comparison]
        return [s for s in self.values(history, now) if holds(s.value, self.threshold)]


class Conditions:
    """A compiler: condition text -> the FakeCondition registered for it."""

    def __init__(self) -> None:
        self.by_text: dict[str, FakeCondition] = {}

    def add(self, text: str, comparison: str | None = ">", threshold: float = 0.0) -> FakeCondition:
        cond = FakeCondition(comparison, threshold)
        self.by_text[text] = cond
        return cond

    def __call__(self, text: str) -> FakeCondition:
        if text not in self.by_text:
            raise ValueError(f"unknown test condition {text!r}")
        return self.by_text[text]


class Recorder:
    """A listener that keeps what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[Alert, AlertEvent]] = []

    def __call__(self, alert: Alert, event: AlertEvent) -> None:
        self.calls.append((alert, event))

    def kinds(self) -> list[str]:
        return [event.kind.value for _, event in self.calls]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def conditions() -> Conditions:
    return Conditions()


@pytest.fixture
def make_evaluator(
    clock: Clock, conditions: Conditions,
) -> Iterator[Callable[..., AlertEvaluator]]:
    stores: list[AlertStore] = []

    def make(*rules: AlertRule, store: AlertStore | None = None, **kwargs: Any) -> AlertEvaluator:
        return AlertEvaluator(rules, None, store=store, clock=clock, compiler=conditions, **kwargs)

    yield make
    for store in stores:
        store.close()
