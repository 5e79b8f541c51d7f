"""A template action botmon does not render is refused when the rule file is read, at
the action's own line and column, instead of reaching a notification as raw text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_botmon.alerting.rules import RuleFileError, parse_rules
from otel_botmon.alerting.templates import render_template, unsupported_action

RENDERED = ["{{ $value }}", "{{ $labels.job }}", "{{ .Labels.job }}", "{{ .Value }}",
            "{{ $value | humanizePercentage }}", "{{ humanize $value }}",
            '{{ printf "%.2f" $value }}', '{{ $value | printf "%.1f" }}',
            "{{- $value -}}", "{{ $externalLabels.cluster }}", "{{ $externalURL }}"]
REFUSED = ["{{ if gt $value 1.0 }}", "{{ with $labels.job }}", "{{ range .Alerts }}",
           '{{ title "x" }}', "{{ $value | toUpper }}",
           # Go's template parser refuses a dash beside the braces without a space
           "{{-$value}}", "{{ $value-}}",
           # the metric name, which botmon's alert series do not carry
           "{{ $labels.__name__ }}", "{{ .Labels.__name__ }}",
           # printf formats Go renders otherwise than one float (%!d(float64=1), a
           # missing operand, the alternate form)
           '{{ printf "%d" $value }}', '{{ printf "%s" $value }}',
           '{{ printf "%.1f/%.1f" $value }}', '{{ printf "%#g" $value }}',
           '{{ $value | printf "%x" }}']


@pytest.mark.parametrize("action", RENDERED)
def test_rendered_actions_are_accepted(action: str) -> None:
    assert unsupported_action(f"a {action} b") is None
    assert "{{" not in render_template(action, value=1.5, labels={"job": "api"})


@pytest.mark.parametrize("action", REFUSED)
def test_other_actions_are_named(action: str) -> None:
    assert unsupported_action(f"x {{{{ $value }}}} {action} y {{{{ end }}}}") == action


@given(st.text(max_size=200))
def test_text_without_actions_is_accepted(text: str) -> None:
    if "{{" not in text:
        assert unsupported_action(text) is None


RULES = """\
groups:
  - name: g
    rules:
      - alert: A
        expr: up > 0
        annotations:
          ok: "{{ $labels.job }}"
          summary: "up {{ if gt $value 1.0 }}big{{ end }}"
"""


def test_the_rule_file_is_refused_at_the_action() -> None:
    with pytest.raises(RuleFileError) as caught:
        parse_rules(RULES, "r.yml")
    message = str(caught.value)
    assert message.startswith("r.yml:8:24: groups[0].rules[0].annotations.summary: ")
    assert "{{ if gt $value 1.0 }} is not supported" in message


# Go's trim markers drop the white space of the text next to them (as promtool renders)
@pytest.mark.parametrize(("template", "rendered"), [
    ("a {{- $value -}} z", "a1.5z"),
    ("a {{- $value }} z", "a1.5 z"),
    ("a {{ $value -}} z", "a 1.5z"),
    ("a \t\n {{- $labels.job -}} \n\t z", "aapiz"),
    ("{{ $value }}  {{- $value -}}  {{ $value }}", "1.51.51.5"),
    ('v {{- printf "%.1f" $value -}} .', "v1.5."),
    ("{value} {{- $value }}", "1.51.5"),
])
def test_trim_markers_drop_the_white_space_beside_them(template: str, rendered: str) -> None:
    assert render_template(template, value=1.5, labels={"job": "api"}) == rendered
