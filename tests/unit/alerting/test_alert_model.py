"""Alert model edges: templates, matchers, fingerprints and (de)serialisation never surprise."""

from __future__ import annotations

from datetime import UTC

from hypothesis import given
from hypothesis import strategies as st

from otel_botmon.alerting.model import (
    Alert,
    AlertSeverity,
    AlertState,
    AlertType,
    LabelMatcher,
    fingerprint,
    render_template,
)

label_maps = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=5)


@given(template=st.text(max_size=60), labels=label_maps,
       value=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)))
def test_any_template_renders_without_raising(
    template: str, labels: dict[str, str], value: float | None,
) -> None:
    assert isinstance(render_template(template, value=value, labels=labels, rule="r"), str)


@given(text=st.text(max_size=40))
def test_any_matcher_text_parses_or_raises_value_error(text: str) -> None:
    try:
        matcher = LabelMatcher.parse(text)
    except ValueError:
        return
    assert isinstance(matcher.matches({"a": "b"}), bool)


@given(labels=label_maps)
def test_fingerprint_ignores_label_order(labels: dict[str, str]) -> None:
    reordered = dict(reversed(list(labels.items())))
    assert fingerprint("rule", labels) == fingerprint("rule", reordered)
    assert fingerprint("rule", labels) != fingerprint("other", labels)


def test_value_formats() -> None:
    def render(t: str, v: float | None) -> str:
        return render_template(t, value=v, labels={}, rule="r")

    assert render("{value}", 3.0) == "3"
    # as Go prints a float64 ({{ $value }} in Prometheus)
    assert render("{value}", 0.123456) == "0.123456"
    assert render("{value}", 1234567.0) == "1.234567e+06"
    assert render("{value}", float("nan")) == "NaN"
    assert render("{{ $value | humanize }}", 1234567.0) == "1.235M"
    # a huge precision is not formatted (a 2 KB rule file cannot make it hang)
    assert render("{value:.999999999f}", 2.5) == "2.5"
    assert render("{value:.1f}%", 97.04) == "97.0%"
    assert render("{value:bogus}", 2.5) == "2.5"
    assert render("{{ $value }}", None) == ""


def test_alert_round_trips_through_its_dict() -> None:
    alert = Alert.new(
        rule_name="r", title="t", message="m", severity=AlertSeverity.CRITICAL,
        alert_type=AlertType.API, labels={"alertname": "r", "component": "db"},
        started_at=1_700_000_000.5,
    )
    alert.state, alert.fired_at, alert.acknowledged_by = AlertState.FIRING, 1_700_000_001.0, "me"
    data = alert.to_dict()
    assert data["started_at_iso"] == "2023-11-14T22:13:20.500Z"
    assert alert.component == "db"
    again = Alert.from_dict(data)
    assert again.to_dict() == data


def test_alerting_exports_every_public_name() -> None:
    import otel_botmon.alerting as alerting

    assert len(set(alerting.__all__)) == len(alerting.__all__)
    for name in alerting.__all__:
        assert getattr(alerting, name) is not None


def test_a_naive_datetime_is_utc() -> None:
    from datetime import datetime

    from otel_botmon.alerting.model import to_epoch

    naive = datetime(2026, 1, 2, 3, 4, 5)
    assert to_epoch(naive) == naive.replace(tzinfo=UTC).timestamp()
