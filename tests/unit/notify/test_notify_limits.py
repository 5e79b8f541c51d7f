"""Chat messages for large alert groups stay within Telegram's and Slack's limits, and
every alert of the group is either listed or counted in "… and N more alerts"."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.notify.message import Notification, group_key, summarize
from otel_botmon.notify.slack import slack_payload
from otel_botmon.notify.telegram import MAX_MESSAGE_LENGTH, telegram_text

MORE = re.compile(r"^… and (\d+) more alerts?$")

label_values = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)),
                       max_size=300)


@st.composite
def alert_groups(draw: st.DrawFn) -> list[Notification]:
    count = draw(st.integers(1, 600))
    value = draw(label_values)
    shared = draw(st.dictionaries(st.sampled_from(["series", "job", "region"]),
                                  label_values, max_size=2))
    return [
        Notification(
            alert_id=f"a{i}", title="t", rule_name="HighLatency",
            severity=draw(st.sampled_from(list(AlertSeverity))) if i == 0 else "warning",
            labels={**shared, "exchange.name": "binance", "bot": f"{value}{i}"}, value=i,
        )
        for i in range(count)
    ]


def accounted(lines: list[str], first_char: str) -> int:
    """Alerts listed (lines starting with ``first_char``) plus those counted as more."""
    more = [int(m.group(1)) for line in lines if (m := MORE.match(line))]
    assert len(more) <= 1
    return sum(line.startswith(first_char) for line in lines) + sum(more)


def section_lines(payload: dict[str, Any]) -> list[str]:
    return [line for block in payload["blocks"] if block["type"] == "section"
            for line in block["text"]["text"].split("\n")]


def check_slack(payload: dict[str, Any]) -> None:
    blocks = payload["blocks"]
    assert len(blocks) <= 50
    assert len(blocks[0]["text"]["text"]) <= 150
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(text.strip() and len(text) <= 3000 for text in sections)
    assert sum(map(len, sections)) <= 12_000
    assert len(payload["text"]) <= 3000
    fields = payload["attachments"][0]["blocks"][0]["fields"]
    assert len(fields) <= 10 and all(len(f["text"]) <= 2000 for f in fields)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(alert_groups(), st.booleans())
def test_every_message_fits_and_accounts_for_every_alert(
    group: list[Notification], as_storm: bool,
) -> None:
    summary = summarize(group, group=None if as_storm else group_key(group[0]))
    first = "[" if as_storm else "-"

    text = telegram_text(summary)
    assert len(text) <= MAX_MESSAGE_LENGTH
    assert accounted(text.split("\n")[1:], first) == len(group)
    assert text.endswith("summary_count=" + str(len(group)))  # the facts survive the cut

    payload = slack_payload(summary)
    check_slack(payload)
    assert accounted(section_lines(payload), first) == len(group)


def test_a_group_of_500_alerts_with_long_labels_is_cut_between_alerts() -> None:
    group = [Notification(alert_id=f"a{i}", title="t", rule_name="HighLatency",
                          labels={"exchange.name": "binance", "bot": f"bot-{i}-" + "x" * 120},
                          value=i) for i in range(500)]
    summary = summarize(group, group=group_key(group[0]))

    lines = telegram_text(summary).split("\n")
    listed = [line for line in lines if line.startswith("- bot=bot-")]
    assert listed and all(line.endswith(f"(value {i})") for i, line in enumerate(listed))
    assert f"… and {500 - len(listed)} more alerts" in lines

    sections = section_lines(slack_payload(summary))
    shown = [line for line in sections if line.startswith("- bot=bot-")]
    assert len(shown) > len(listed)  # Slack has room for more than Telegram
    assert sections[-1] == f"… and {500 - len(shown)} more alerts"


def test_a_group_that_fits_is_listed_whole() -> None:
    group = [Notification(alert_id=f"a{i}", title="t", rule_name="Slow", value=i,
                          labels={"bot": f"bot-{i}"}) for i in range(5)]
    summary = summarize(group, group=group_key(group[0]))
    assert "more alert" not in telegram_text(summary)
    assert section_lines(slack_payload(summary)) == [f"- bot=bot-{i} (value {i})"
                                                     for i in range(5)]


def test_a_label_with_a_line_break_stays_one_line_per_alert() -> None:
    group = [Notification(alert_id=f"a{i}", title="t", rule_name="Slow", value=i,
                          labels={"bot": f"bot-{i}\n- fake"}) for i in range(3)]
    summary = summarize(group, group=group_key(group[0]))
    assert summary.message.split("\n")[-3:] == [f"- bot=bot-{i} - fake (value {i})"
                                                for i in range(3)]


def test_a_long_message_is_split_into_sections_none_of_them_blank() -> None:
    for message, lines in (("a" * 3000 + "\n", ["a" * 3000]),
                           ("a" * 3000 + "\n\nb", ["a" * 3000, "", "b"])):
        payload = slack_payload(Notification(alert_id="x", title="t", message=message))
        check_slack(payload)
        assert section_lines(payload) == lines
