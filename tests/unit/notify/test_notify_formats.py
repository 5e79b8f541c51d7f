"""Wire formats of each channel, and how HTTP answers become outcomes."""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import hmac
import html
import operator
import time
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_botmon.alerting.model import AlertEventKind, AlertSeverity
from otel_botmon.notify import telegram
from otel_botmon.notify.alertmanager import alertmanager_alert
from otel_botmon.notify.base import DeliveryOutcome, classify_response, parse_retry_after
from otel_botmon.notify.email import build_email, email_bytes
from otel_botmon.notify.pagerduty import pagerduty_event
from otel_botmon.notify.slack import SEVERITY_COLOURS, slack_payload
from otel_botmon.notify.telegram import MAX_MESSAGE_LENGTH, telegram_text, utf16_length
from otel_botmon.notify.webhook import sign
from tests.unit.notify.fakes import make_notification

HOSTILE = "<img src=x onerror=alert(1)> & <b>bold</b>"


def test_telegram_text_is_html_escaped() -> None:
    text = telegram_text(make_notification(title=HOSTILE, message=HOSTILE))
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt; &amp;" in text
    assert text.startswith("<b>") and text.count("<b>") == 1


def test_telegram_text_is_cut_at_4096_without_breaking_an_entity() -> None:
    for filler in ("&" * 5000, "a" * 5000, "é<" * 3000):
        text = telegram_text(make_notification(message=filler))
        assert len(text) <= MAX_MESSAGE_LENGTH
        message = text.split("\n")[1]
        assert message.endswith("…")
        tail = message[message.rfind("&"):]
        assert ";" in tail or "&" not in message
        assert text.endswith("Labels: host=bot-1")  # the facts follow the cut message


# Text as alerts carry it: ASCII, HTML specials, accents, CJK and emoji (two UTF-16 units),
# up to several times the limit (a piece repeated: hypothesis draws short text).
_ALERT_TEXT = st.builds(operator.mul, st.text(st.sampled_from(
    ["a", " ", "\n", "&", "<", "é", "中", "\U0001F6A8", "\U0001F525", "\U00010348"]),
    max_size=40), st.integers(1, 400))


@given(title=_ALERT_TEXT, message=_ALERT_TEXT, lines=st.integers(0, 60))
@settings(max_examples=60, deadline=None)
def test_telegram_text_fits_in_utf16_code_units(title: str, message: str,
                                                lines: int) -> None:
    """Telegram counts UTF-16 code units; whatever the alert text, the message fits, and
    one that fits when counted by characters is sent as it is (cut no shorter)."""
    summary = [make_notification(i, title=title[:50] + str(i)) for i in range(lines)]
    notification = make_notification(title=title, message=message, summary_of=summary)
    text = telegram_text(notification)
    assert 0 < utf16_length(text) <= MAX_MESSAGE_LENGTH
    by_characters = telegram._fit(notification, MAX_MESSAGE_LENGTH)
    if utf16_length(by_characters) <= MAX_MESSAGE_LENGTH:
        assert text == by_characters


@pytest.mark.parametrize(("title", "message"), [
    ("x", "\U0001F6A8" * 10_000),
    ("x", ("\U0001F6A8" * 50 + "\n") * 200),
    ("\U0001F6A8" * 200, "\U0001F6A8" * 10_000),
    ('"' * 200, "\U0001F6A8" * 10_000),
], ids=["emoji-message", "emoji-lines", "emoji-title", "quotes-title"])
def test_an_emoji_heavy_message_uses_the_room_and_keeps_its_facts(title: str,
                                                                  message: str) -> None:
    """Refitting for UTF-16 takes off what is needed, not twice as much: the message
    still fills most of the limit and the facts (down to the labels) are all there."""
    text = telegram_text(make_notification(title=title, message=message))
    assert MAX_MESSAGE_LENGTH - 120 <= utf16_length(text) <= MAX_MESSAGE_LENGTH
    assert text.endswith("Labels: host=bot-1") and "\U0001F6A8" * 20 in text.split("\n")[1]


def test_utf16_length_counts_astral_characters_twice() -> None:
    assert utf16_length("a\U0001F6A8é中") == 5
    assert utf16_length("\ud800") == 1  # a lone surrogate (from JSON) is one unit


def test_slack_payload_has_blocks_fallback_and_severity_colour() -> None:
    payload = slack_payload(make_notification(severity=AlertSeverity.CRITICAL,
                                              message="<!channel> look"), "#alerts")
    assert payload["channel"] == "#alerts"
    assert payload["text"].startswith("[CRITICAL] FIRING")
    assert payload["blocks"][0]["type"] == "header"
    assert payload["blocks"][1]["text"]["text"] == "&lt;!channel&gt; look"
    assert payload["attachments"][0]["color"] == SEVERITY_COLOURS["critical"]
    fields = payload["attachments"][0]["blocks"][0]["fields"]
    assert any(f["text"] == "*Value*\n93.5" for f in fields)


@pytest.mark.parametrize(
    ("event", "action"),
    [(AlertEventKind.FIRED, "trigger"), (AlertEventKind.ESCALATED, "trigger"),
     (AlertEventKind.ACKNOWLEDGED, "acknowledge"), (AlertEventKind.RESOLVED, "resolve")],
)
def test_pagerduty_actions_share_the_fingerprint_as_dedup_key(event: AlertEventKind,
                                                              action: str) -> None:
    body = pagerduty_event(make_notification(event=event, fingerprint="fp-1"), "key", "bot")
    assert body["event_action"] == action and body["dedup_key"] == "fp-1"
    assert body["routing_key"] == "key"
    assert ("payload" in body) == (action == "trigger")


def test_pagerduty_trigger_payload() -> None:
    body = pagerduty_event(make_notification(severity=AlertSeverity.EMERGENCY), "k", "bot-1")
    payload = body["payload"]
    assert payload["severity"] == "critical" and payload["source"] == "bot-1"
    assert payload["summary"].startswith("[EMERGENCY] FIRING")
    assert payload["custom_details"]["Value"] == "93.5"


def test_alertmanager_alert_firing_and_resolved() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    firing = alertmanager_alert(
        make_notification(labels={"http.route": "/x"}, rule_name="cpu"), now=now, hold=240,
        generator_url="http://127.0.0.1:8001/")
    assert firing["labels"]["alertname"] == "cpu"
    assert firing["labels"]["http_route"] == "/x"
    assert firing["labels"]["severity"] == "warning"
    assert firing["endsAt"] == "2026-01-01T00:04:00Z"
    assert firing["generatorURL"] == "http://127.0.0.1:8001/"
    assert firing["annotations"]["event"] == "fired"
    assert firing["annotations"]["value"] == "93.5"
    assert firing["startsAt"].endswith("Z")
    resolved_at = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    resolved = alertmanager_alert(
        make_notification(event=AlertEventKind.RESOLVED, occurred_at=resolved_at,
                          first_fired=datetime(2025, 12, 31, tzinfo=UTC)),
        now=now, hold=240, generator_url=None)
    assert resolved["endsAt"] == "2026-01-01T00:01:00Z"


def test_email_has_plain_and_escaped_html_parts() -> None:
    message = build_email(make_notification(title=HOSTILE, message=HOSTILE), "bot@x.io",
                          ["a@x.io", "b@x.io"])
    assert message["To"] == "a@x.io, b@x.io"
    plain = message.get_body(("plain",))
    rich = message.get_body(("html",))
    assert plain is not None and rich is not None
    assert HOSTILE in plain.get_content()
    assert "<img" not in rich.get_content()
    assert html.escape(HOSTILE) in rich.get_content()


def test_webhook_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"a": 1}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body) == f"sha256={expected}"


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30, abs=1.0)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0


def response(status: int, **kwargs: object) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", "http://x"), **kwargs)  # type: ignore[arg-type]


def test_classify_response() -> None:
    assert classify_response(response(202)).ok
    limited = classify_response(response(429, headers={"Retry-After": "3"}))
    assert limited.outcome is DeliveryOutcome.RETRY and limited.retry_after == 3.0
    telegram = classify_response(response(429, json={
        "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 5",
        "parameters": {"retry_after": 5}}))
    assert telegram.retry_after == 5.0
    unavailable = classify_response(response(503, headers={"Retry-After": "2"}))
    assert unavailable.outcome is DeliveryOutcome.RETRY and unavailable.retry_after == 2.0
    assert classify_response(response(502)).outcome is DeliveryOutcome.RETRY
    bad = classify_response(response(400, json={"ok": False,
                                                "description": "Bad Request: chat not found"}))
    assert bad.outcome is DeliveryOutcome.FAILED
    assert bad.status_code == 400 and "chat not found" in bad.detail
    assert classify_response(response(404, text="no_service")).detail.endswith("no_service")


@settings(max_examples=100, deadline=None)
@given(title=st.text(max_size=300), message=st.text(max_size=500),
       alert_id=st.text(min_size=1, max_size=60))
def test_email_bytes_parse_to_the_same_message_as_build_email(
        title: str, message: str, alert_id: str) -> None:
    notification = make_notification(title=title, message=message, alert_id=alert_id)
    recipients = ["a@x.io", "b@x.io"]
    raw = email_bytes(notification, "bot@x.io", recipients)
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    fast = email.message_from_bytes(raw, policy=email.policy.default)
    slow = build_email(notification, "bot@x.io", recipients)
    for name in ("Subject", "From", "To", "X-Botmon-Alert-Id", "MIME-Version"):
        assert str(fast[name]) == str(slow[name]), name
    assert fast["Message-ID"] == slow["Message-ID"]
    assert not fast.defects
    for subtype in ("plain", "html"):
        ours, theirs = fast.get_body((subtype,)), slow.get_body((subtype,))
        assert ours is not None and theirs is not None
        assert ours.get_content().replace("\r\n", "\n") == theirs.get_content(), subtype


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.floats().map(repr), st.integers(-(10**500), 10**500).map(str),
    st.sampled_from(["inf", "-inf", "nan", "1e999", "Infinity", " 1e308 ",
                     "Fri, 31 Dec 9999 23:59:59 GMT", "x" * 100_000]),
    st.text(max_size=40),
))
def test_a_retry_after_header_is_a_bounded_finite_wait_or_none(value: str) -> None:
    """A receiver's Retry-After never makes a channel wait forever (inf), hammer it
    (nan read as 0) or wait for years: a finite wait of at most a day, or None (the
    dispatcher's own backoff)."""
    from otel_botmon.notify.base import MAX_RETRY_AFTER_S

    found = parse_retry_after(value, now=1_700_000_000.0)
    assert found is None or 0.0 <= found <= MAX_RETRY_AFTER_S
    if value.strip().lower() in ("inf", "-inf", "nan", "1e999", "infinity"):
        assert found is None


@pytest.mark.parametrize("retry_after", ["1e999", "Infinity", "NaN", "1" + "0" * 400])
def test_telegram_retry_after_in_the_body_is_bounded(retry_after: str) -> None:
    """Telegram's ``parameters.retry_after`` read from JSON: ``1e999`` parses as inf and a
    400-digit int overflows float(); neither may stall the channel or raise."""
    from otel_botmon.notify.base import MAX_RETRY_AFTER_S

    response = httpx.Response(
        429, content=f'{{"ok": false, "parameters": {{"retry_after": {retry_after}}}}}'.encode(),
        headers={"content-type": "application/json"})
    result = classify_response(response)
    assert result.retry_after is None or 0.0 <= result.retry_after <= MAX_RETRY_AFTER_S


@settings(max_examples=50, deadline=None)
@given(ident=st.text(min_size=1, max_size=80))
def test_a_redelivered_email_has_the_same_message_id(ident: str) -> None:
    """A notification delivered again after a crash (the outbox row was sent, the
    process killed before it was marked delivered) must be recognisable: the
    Message-ID depends on the notification id alone (make_msgid added the time and a
    random number), and is a valid one for any id."""
    notification = make_notification(title="t")
    notification.id = ident
    first = email.message_from_bytes(email_bytes(notification, "bot@x.io", ["a@x.io"]),
                                     policy=email.policy.default)["Message-ID"]
    time.sleep(0.001)  # make_msgid's time part moves on
    again = email.message_from_bytes(email_bytes(notification, "bot@x.io", ["a@x.io"]),
                                     policy=email.policy.default)["Message-ID"]
    assert first == again == build_email(notification, "bot@x.io", ["a@x.io"])["Message-ID"]
    other = make_notification(title="t")
    assert build_email(other, "bot@x.io", ["a@x.io"])["Message-ID"] != first
    local = str(first)[1:-1].split("@")[0]
    assert str(first).startswith("<") and local and local.isascii()
    assert all(c.isalnum() or c in "._-" for c in local)


def test_a_redelivered_storm_summary_has_the_same_id() -> None:
    """The webhook's Idempotency-Key and the mail's Message-ID of a summary follow the
    notifications it stands for (it was a new random id at each delivery)."""
    from otel_botmon.notify.message import summarize

    members = [make_notification(title=f"a{i}") for i in range(3)]
    assert summarize(members).id == summarize(list(members)).id
    assert summarize(members).id != summarize(members[:2]).id
