"""The bench harness: its statistics, its verdicts and its JSON lines."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench._harness import MISSED, Bench, quantile

finite = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)


@given(st.lists(finite, min_size=1, max_size=50))
def test_quantile_matches_the_standard_library(values: list[float]) -> None:
    assert quantile(values, 0.5) == pytest.approx(statistics.median(values))
    assert quantile(values, 0.0) == min(values) and quantile(values, 1.0) == max(values)
    if len(values) >= 2:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        assert quantile(values, 0.25) == pytest.approx(q1)
        assert quantile(values, 0.75) == pytest.approx(q3)


@settings(max_examples=15, deadline=None)  # every round runs a full gc.collect()
@given(st.lists(finite, min_size=2, max_size=12), st.integers(1, 3), finite)
def test_rounds_report_median_of_every_round_and_a_verdict(
    ratios: list[float], repeat: int, target: float,
) -> None:
    bench = Bench("t", argv=["--repeat", str(repeat), "--rounds", str(len(ratios))])
    feed = iter(ratios * repeat)
    figure = bench.rounds("f", lambda: next(feed), target=target, workload="w")
    assert figure is not None
    assert figure.ratios == ratios * repeat
    assert figure.median == pytest.approx(statistics.median(ratios))
    assert figure.repeat_medians == [statistics.median(ratios)] * repeat
    assert figure.holds is (statistics.median(ratios) <= target)
    assert bench.finish() == (0 if figure.holds else MISSED)


def test_ratio_interleaves_and_divides_candidate_by_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    order: list[str] = []
    out = tmp_path / "figures.jsonl"
    bench = Bench("t", argv=["--rounds", "4", "--json", str(out)])
    figure = bench.ratio("fig", lambda: order.append("a"), lambda: order.append("b"),
                         target=2.0, workload="appends", calls=3)
    assert figure is not None
    timed = order[-4 * 6:]  # after the warm-up: four rounds of 3 + 3 calls
    rounds = [timed[i:i + 6] for i in range(0, 24, 6)]
    assert [r[0] for r in rounds] == ["a", "b", "a", "b"]  # who goes first alternates
    assert all(len(set(r[:3])) == 1 and len(set(r[3:])) == 1 for r in rounds)
    line = json.loads(out.read_text())
    printed = [json.loads(x[6:]) for x in capsys.readouterr().out.splitlines()
               if x.startswith("BENCH ")]
    assert printed == [line]
    assert line["figure"] == "fig" and line["rounds"] == 4 and line["workload"] == "appends"
    assert line["q1"] <= line["median"] <= line["q3"]


def test_only_skips_figures_not_asked_for() -> None:
    bench = Bench("t", argv=["--only", "keep", "--rounds", "1"])
    assert bench.rounds("drop.me", lambda: 1.0, target=1, workload="w") is None
    assert bench.rounds("keep.me", lambda: 1.0, target=1, workload="w") is not None
    assert [f.name for f in bench.figures] == ["keep.me"]
