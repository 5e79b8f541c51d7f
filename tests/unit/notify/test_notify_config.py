"""NotificationConfig: the guide's fields, validation at construction, secrets that never print."""

from __future__ import annotations

import logging

import pytest

from otel_botmon.alerting.model import AlertSeverity, NotificationChannel
from otel_botmon.notify.config import NotificationConfig, Secret

SECRETS = {
    "smtp_password": "app-password-123",
    "slack_webhook_url": "https://hooks.slack.com/services/T000/B000/slacksecretXYZ",
    "telegram_bot_token": "123456:telegram-secret-token",
    "pagerduty_routing_key": "pd-routing-key-0123456789abcdef",
    "webhook_hmac_secret": "hmac-shared-secret",
}
WEBHOOK = "https://example.com/hooks/webhook-secret-path"


def full_config() -> NotificationConfig:
    return NotificationConfig(
        smtp_server="smtp.gmail.com", smtp_port=587, smtp_use_tls=True,
        smtp_username="bot@example.com", email_from="bot@example.com",
        email_to=["admin@example.com", "ops@example.com"], webhook_urls=[WEBHOOK],
        webhook_timeout=10.0, log_file="alerts.log", slack_channel="#trading-alerts",
        telegram_chat_id="42", alertmanager_url="http://127.0.0.1:9093", **SECRETS,
    )


def test_guide_example_builds_with_only_email_fields() -> None:
    config = NotificationConfig(email_from="bot@yourcompany.com",
                                email_to=["admin@yourcompany.com"])
    assert config.smtp_port == 587
    assert config.configured_channels() == [NotificationChannel.CONSOLE,
                                            NotificationChannel.EMAIL]


def test_every_channel_is_configured_by_the_guide_fields() -> None:
    assert full_config().configured_channels() == list(NotificationChannel)


def test_secrets_never_appear_in_repr_str_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    config = full_config()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("test").info("config is %s / %r", config, config)
    shown = repr(config) + str(config) + caplog.text
    for secret in [*SECRETS.values(), WEBHOOK]:
        assert secret not in shown
    assert "REDACTED" in repr(config)
    assert isinstance(config.smtp_password, Secret)
    assert config.smtp_password.reveal() == SECRETS["smtp_password"]


def test_bad_url_error_names_the_field_without_the_secret() -> None:
    with pytest.raises(ValueError, match=r"webhook_urls\[0\]") as info:
        NotificationConfig(webhook_urls=["ftp://host/secret-path-abcdef"])
    assert "secret-path-abcdef" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"smtp_port": 0}, "smtp_port"),
        ({"email_to": ["not-an-address"]}, r"email_to\[0\]"),
        ({"email_from": "nobody"}, "email_from"),
        ({"webhook_timeout": 0}, "webhook_timeout"),
        ({"webhook_timeout": float("nan")}, "webhook_timeout"),
        ({"storm_threshold": 0}, "storm_threshold"),
        ({"rate_limits": {"pigeon": 1.0}}, "rate_limits"),
        ({"rate_limits": {"slack": -1}}, r"rate_limits\[slack\]"),
        ({"severity_channels": {"loud": ["slack"]}}, "severity_channels"),
        ({"telegram_bot_token": "12345:abc"}, "telegram_chat_id"),
        ({"alertmanager_url": "localhost:9093"}, "alertmanager_url"),
        ({"webhook_urls": "https://example.com/x"}, "webhook_urls"),
        # wrong types: kept before (or a TypeError without the field's name)
        ({"smtp_server": 123}, "smtp_server must be a string"),
        ({"email_from": 5}, "email_from must be a string or None"),
        ({"slack_channel": 5}, "slack_channel must be a string or None"),
        ({"log_file": 3}, "log_file must be a string or None"),
        ({"smtp_use_tls": "no"}, "smtp_use_tls must be True or False"),
        ({"console": 0}, "console must be True or False"),
        ({"outbox_path": b"x.db"}, "outbox_path must be a string or None"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        NotificationConfig(**kwargs)  # type: ignore[arg-type]


def test_routing_uses_rule_channels_then_severity_route_then_all() -> None:
    config = NotificationConfig(
        slack_webhook_url="https://hooks.slack.com/services/a/b/c",
        severity_channels={"critical": ["slack", "console"]},
    )
    assert config.channels_for(AlertSeverity.INFO, [NotificationChannel.EMAIL]) == [
        NotificationChannel.EMAIL]
    assert config.channels_for(AlertSeverity.CRITICAL) == [
        NotificationChannel.SLACK, NotificationChannel.CONSOLE]
    assert config.channels_for(AlertSeverity.WARNING) == [
        NotificationChannel.CONSOLE, NotificationChannel.SLACK]


def test_default_rate_limits_follow_slack_and_telegram() -> None:
    config = NotificationConfig()
    assert config.rate_limit(NotificationChannel.SLACK) == 1.0
    assert config.rate_limit(NotificationChannel.TELEGRAM) == 1.0
    assert config.rate_limit(NotificationChannel.WEBHOOK) is None


def test_the_guides_placeholder_and_numeric_chat_ids_are_taken() -> None:
    # the guide's `MonitoringConfig(notification_config=NotificationConfig(...))`: the
    # placeholder was kept as smtp_server=Ellipsis
    assert NotificationConfig(...).smtp_server == "localhost"  # type: ignore[arg-type]
    config = NotificationConfig(telegram_bot_token="12345:abcdef",
                                telegram_chat_id=-1001234)  # type: ignore[arg-type]
    assert config.telegram_chat_id == "-1001234"
    import pathlib

    assert NotificationConfig(log_file=pathlib.Path("a.log")).log_file == "a.log"  # type: ignore[arg-type]
