"""The CLI's small parts: durations, URLs, ages, colours, the status headline."""

from __future__ import annotations

import argparse
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_botmon.cli_client import Painter, age, headline, normalize_url, parse_duration


@given(st.lists(st.tuples(st.integers(1, 500), st.sampled_from("smhdw")), min_size=1,
                max_size=4))
def test_durations_add_up_their_parts(parts: list[tuple[int, str]]) -> None:
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = "".join(f"{n}{u}" for n, u in parts)
    assert parse_duration(text) == sum(n * unit[u] for n, u in parts)


@pytest.mark.parametrize("bad", ["", "soon", "10", "1h 30", "-5m", "0s", "1x", "m5"])
def test_bad_durations_are_usage_errors(bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(bad)


@pytest.mark.parametrize(("given", "expected"), [
    ("localhost:8001", "http://localhost:8001"), ("127.0.0.1:8001/", "http://127.0.0.1:8001"),
    ("https://bot.example", "https://bot.example"), (" http://h:1 ", "http://h:1"),
])
def test_urls_without_a_scheme_get_http(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


@given(st.integers(0, 10 * 86400))
def test_age_is_compact_and_never_negative(seconds: int) -> None:
    text = age(1000.0, 1000.0 + seconds)
    assert text[0].isdigit() and " " not in text and len(text) <= 8
    assert age(1000.0 + seconds, 1000.0) == "0s"


def test_colours_only_on_a_terminal_and_never_with_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert Painter(Tty())("critical", "critical") == "\x1b[1;31mcritical\x1b[0m"
    assert Painter(io.StringIO())("critical", "critical") == "critical"
    monkeypatch.setenv("NO_COLOR", "1")
    assert Painter(Tty())("critical", "critical") == "critical"
    # no-color.org: present *and not empty*; an empty NO_COLOR leaves colours on
    monkeypatch.setenv("NO_COLOR", "")
    assert Painter(Tty())("critical", "critical") == "\x1b[1;31mcritical\x1b[0m"


def test_headline_names_the_worst_firing_alert() -> None:
    assert headline({"overall_health": "healthy", "firing": []}) == "HEALTHY"
    firing = [{"title": "Trading engine stalled"}, {"title": "b"}, {"title": "c"}]
    assert headline({"overall_health": "critical", "firing": firing}) == \
        "CRITICAL · Trading engine stalled (+2)"
    assert "\x1b" not in headline({"overall_health": "critical",
                                   "firing": [{"title": "x\x1b[2J"}]})
