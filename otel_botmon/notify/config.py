"""``NotificationConfig``: where notifications go, how fast, and how hard we retry.

Every field is optional, so the guide's ``NotificationConfig(email_from=..., email_to=[...])``
works. The configuration is validated when it is built (``ValueError`` naming the field).
Secrets (the SMTP password, tokens, webhook URLs, the PagerDuty routing key and the HMAC
secret) are wrapped in :class:`Secret` at construction: ``repr()``, ``str()``, logs and
error messages show ``REDACTED``, and the values are registered with
:mod:`otel_botmon.redaction` so that any text the SDK emits is scrubbed of them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from otel_botmon import redaction
from otel_botmon._suggest import reject_unknown_keywords
from otel_botmon.alerting.model import AlertSeverity, NotificationChannel

__all__ = ["DEFAULT_RATE_LIMITS", "NotificationConfig", "Secret"]

DEFAULT_RATE_LIMITS: Final[dict[NotificationChannel, float]] = {
    # Slack incoming webhooks allow about one message per second.
    NotificationChannel.SLACK: 1.0,
    # Telegram: about one message per second to one chat.
    NotificationChannel.TELEGRAM: 1.0,
    # PagerDuty Events v2 throttles at about 120 events a minute per routing key.
    NotificationChannel.PAGERDUTY: 2.0,
}


class Secret:
    """A string that never shows itself: ``repr``/``str``/f-strings give ``REDACTED``.

    ``reveal()`` returns the value for the one place that must send it. Two secrets are
    equal when their values are.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret: expected a str, got {type(value).__name__}")
        self._value = value
        if len(value) >= redaction.MIN_SECRET_LENGTH:
            redaction.register_secret(value)
            for part in _url_secret_parts(value):
                redaction.register_secret(part)

    def reveal(self) -> str:
        """The secret value itself; pass it straight to the wire, never to a log."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({redaction.REDACTED!r})"

    def __str__(self) -> str:
        return redaction.REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


def _url_secret_parts(value: str) -> list[str]:
    """The parts of a secret URL (a webhook's) that a receiver may echo on their own: its
    path (``/services/T0/B0/XXXX``; an error page quotes "the requested URL"), and each
    path segment that looks like a token (16 characters or more, letters and digits)."""
    if "://" not in value:
        return []
    from urllib.parse import urlsplit

    try:
        path = urlsplit(value).path
    except ValueError:  # not a URL after all: the whole value is registered
        return []
    parts = [path] if len(path) >= 8 else []
    parts += [segment for segment in path.split("/") if len(segment) >= 16
              and any(c.isdigit() for c in segment) and any(c.isalpha() for c in segment)]
    return parts


def _secret(value: str | Secret | None, name: str) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise ValueError(f"NotificationConfig.{name} must be a string, got {type(value).__name__}")
    return Secret(value) if value else None


def _check_http_url(value: str, name: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The URL may embed a token: say what is wrong without echoing it.
        raise ValueError(
            f"NotificationConfig.{name} must be an http(s) URL with a host "
            f"(got scheme {parts.scheme!r})"
        )


def _positive(value: object, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"NotificationConfig.{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"NotificationConfig.{name} must be {bound}, got {value!r}")
    return float(value)


_REQUIRED_TEXT = frozenset({"smtp_server", "telegram_api_url", "pagerduty_url", "source"})
_TEXT_FIELDS = (
    "smtp_server", "smtp_username", "smtp_ca_file", "email_from", "log_file", "slack_channel",
    "telegram_chat_id", "telegram_api_url", "alertmanager_url", "generator_url",
    "pagerduty_url", "source", "outbox_path",
)


@reject_unknown_keywords
@dataclass
class NotificationConfig:
    """Channels, routing, rate limits and retry policy for alert notifications.

    A channel is *configured* when its required fields are set (see
    :meth:`configured_channels`); console is configured unless ``console`` is False.

    Raises:
        TypeError: an unknown keyword; the message names it and suggests the closest
            field (``smtp_sever=``: did you mean 'smtp_server'?).
        ValueError: a field has a bad value; the message names the field and never
            contains a secret.
    """

    # --- email (the seed's fields) ---
    smtp_server: str = "localhost"
    """SMTP host."""
    smtp_port: int = 587
    smtp_use_tls: bool = True
    """STARTTLS after connecting (port 587). Ignored when ``smtp_use_ssl`` is set."""
    smtp_use_ssl: bool = False
    """Implicit TLS from the first byte (port 465)."""
    smtp_username: str | None = None
    smtp_password: str | Secret | None = None
    smtp_timeout: float = 30.0
    smtp_ca_file: str | None = None
    """Extra CA bundle for verifying the SMTP server (a private CA); verification stays on."""
    email_from: str | None = None
    email_to: list[str] = field(default_factory=list)

    # --- webhooks ---
    webhook_urls: list[str | Secret] = field(default_factory=list)
    """Each URL gets every notification as JSON; URLs are secrets (they embed tokens)."""
    webhook_timeout: float = 10.0
    """Seconds per HTTP request, for every HTTP channel."""
    webhook_hmac_secret: str | Secret | None = None
    """When set, webhooks carry ``X-Botmon-Signature: sha256=<hex HMAC of the body>``."""

    # --- file and console ---
    log_file: str | None = None
    """JSON-lines file, rotated by size."""
    log_file_max_bytes: int = 10 * 1024 * 1024
    log_file_backups: int = 5
    console: bool = True
    """Write notifications to standard error."""

    # --- Slack and Telegram ---
    slack_webhook_url: str | Secret | None = None
    slack_channel: str | None = None
    telegram_bot_token: str | Secret | None = None
    telegram_chat_id: str | None = None
    telegram_api_url: str = "https://api.telegram.org"
    """Bot API base URL (a local Bot API server, or a test server)."""

    # --- Alertmanager and PagerDuty ---
    alertmanager_url: str | None = None
    """Base URL of a Prometheus Alertmanager, e.g. ``http://127.0.0.1:9093``."""
    alertmanager_resend_interval: float = 60.0
    """Firing alerts are re-sent this often (Alertmanager resolves what it stops hearing
    about after its ``resolve_timeout``, 5 minutes by default)."""
    generator_url: str | None = None
    """Link back to the bot's dashboard, sent as Alertmanager's ``generatorURL``."""
    pagerduty_routing_key: str | Secret | None = None
    pagerduty_url: str = "https://events.pagerduty.com/v2/enqueue"
    source: str = "otel_botmon"
    """Where alerts come from (PagerDuty ``payload.source``)."""

    # --- routing ---
    severity_channels: dict[AlertSeverity, list[NotificationChannel]] = field(
        default_factory=dict
    )
    """Channels for alerts whose rule names none, by severity. A severity missing here
    goes to every configured channel."""

    # --- delivery ---
    outbox_path: str | None = None
    """SQLite file of the durable outbox (may be the alert store's file). ``None`` keeps
    the outbox in memory: nothing survives a restart."""
    outbox_retention: float = 7 * 24 * 3600.0
    """Seconds delivered and failed rows (and their attempts) are kept for inspection."""
    rate_limits: dict[NotificationChannel, float] = field(
        default_factory=lambda: dict(DEFAULT_RATE_LIMITS)
    )
    """Messages per second, per destination."""
    storm_threshold: int = 10
    """More than this many messages waiting for one destination are sent as one summary
    (Slack, Telegram, email, webhooks, console, file); none is dropped."""
    group_wait: float = 5.0
    """Seconds a chat or mail notification of a rule's alert waits for others of the same
    alertname and exchange (Alertmanager's ``group_wait``, routes grouped by
    ``[alertname, exchange]``): those queued meanwhile go out as one message listing each
    alert's labels (one exchange outage across bots is one message). 0 sends each at
    once."""
    retry_initial_delay: float = 1.0
    retry_max_delay: float = 300.0
    give_up_after: float = 24 * 3600.0
    """Seconds after which a message that still fails is marked failed."""

    def __post_init__(self) -> None:
        if self.smtp_server is Ellipsis:  # type: ignore[comparison-overlap]
            # the guide's `NotificationConfig(...)`: "your settings here", so the defaults
            self.smtp_server = "localhost"  # type: ignore[unreachable]
        self._validate_types()
        self.smtp_password = _secret(self.smtp_password, "smtp_password")
        self.slack_webhook_url = _secret(self.slack_webhook_url, "slack_webhook_url")
        self.telegram_bot_token = _secret(self.telegram_bot_token, "telegram_bot_token")
        self.pagerduty_routing_key = _secret(self.pagerduty_routing_key, "pagerduty_routing_key")
        self.webhook_hmac_secret = _secret(self.webhook_hmac_secret, "webhook_hmac_secret")
        if isinstance(self.webhook_urls, (str, Secret)):  # type: ignore[unreachable]
            raise ValueError("NotificationConfig.webhook_urls must be a list of URLs")
        urls: list[str | Secret] = []
        for i, url in enumerate(self.webhook_urls):
            wrapped = _secret(url, f"webhook_urls[{i}]")
            if wrapped is None:
                raise ValueError(f"NotificationConfig.webhook_urls[{i}] is empty")
            _check_http_url(wrapped.reveal(), f"webhook_urls[{i}]")
            urls.append(wrapped)
        self.webhook_urls = urls
        self._validate_email()
        self._validate_urls()
        self._validate_numbers()
        self._validate_routing()

    def _validate_types(self) -> None:
        # A wrong type was kept (smtp_server=123, smtp_use_tls="no" meaning TLS on) or
        # failed later without the field's name (email_from=5: "int is not iterable").
        chat_id: object = self.telegram_chat_id
        if isinstance(chat_id, int) and not isinstance(chat_id, bool):
            self.telegram_chat_id = str(chat_id)  # Telegram's chat ids are numbers
        for name in ("log_file", "outbox_path", "smtp_ca_file"):
            path: object = getattr(self, name)
            if isinstance(path, os.PathLike):  # a pathlib.Path is a file name too
                setattr(self, name, os.fspath(path))
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if not (isinstance(value, str) or (value is None and name not in _REQUIRED_TEXT)):
                expected = "a string" if name in _REQUIRED_TEXT else "a string or None"
                raise ValueError(
                    f"NotificationConfig.{name} must be {expected}, got {type(value).__name__}"
                )
        for name in ("smtp_use_tls", "smtp_use_ssl", "console"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ValueError(
                    f"NotificationConfig.{name} must be True or False, got {value!r}"
                )
        self._validate_container_types()

    def _validate_container_types(self) -> None:
        # email_to=None failed with "'NoneType' object is not iterable", naming nothing;
        # smtp_port=True was port 1.
        for name in ("smtp_port", "storm_threshold", "log_file_max_bytes", "log_file_backups"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(
                    f"NotificationConfig.{name} must be an int, got {type(value).__name__}"
                )
        for name in ("email_to", "webhook_urls"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple, str, Secret)):  # one str: checked later
                raise ValueError(
                    f"NotificationConfig.{name} must be a list, got {type(value).__name__}"
                )
        for name in ("severity_channels", "rate_limits"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise ValueError(
                    f"NotificationConfig.{name} must be a dict, got {type(value).__name__}"
                )
        for level, route in self.severity_channels.items():
            if not isinstance(route, (list, tuple)):
                raise ValueError(
                    f"NotificationConfig.severity_channels[{level!r}] must be a list of "
                    f"channels, got {type(route).__name__}"
                )

    def _validate_email(self) -> None:
        recipients: object = self.email_to
        if isinstance(recipients, str):  # one address given as a string
            self.email_to = [recipients]
        self.email_to = list(self.email_to)
        for i, address in enumerate(self.email_to):
            if not isinstance(address, str) or "@" not in address:
                raise ValueError(f"NotificationConfig.email_to[{i}] is not an email address")
        if self.email_from is not None and "@" not in self.email_from:
            raise ValueError("NotificationConfig.email_from is not an email address")
        if not isinstance(self.smtp_port, int) or not 0 < self.smtp_port < 65536:
            raise ValueError(
                f"NotificationConfig.smtp_port must be 1..65535, got {self.smtp_port!r}"
            )
        if not self.smtp_server:
            raise ValueError("NotificationConfig.smtp_server must not be empty")

    def _validate_urls(self) -> None:
        if self.slack_webhook_url is not None:
            _check_http_url(self.slack_webhook_url.reveal(), "slack_webhook_url")  # type: ignore[union-attr]
        for name in ("telegram_api_url", "pagerduty_url"):
            _check_http_url(getattr(self, name), name)
        if self.alertmanager_url is not None:
            _check_http_url(self.alertmanager_url, "alertmanager_url")
        if (self.telegram_bot_token is None) != (self.telegram_chat_id is None):
            raise ValueError(
                "NotificationConfig.telegram_bot_token and telegram_chat_id must be set together"
            )

    def _validate_numbers(self) -> None:
        for name in ("webhook_timeout", "smtp_timeout", "alertmanager_resend_interval",
                     "retry_max_delay", "give_up_after", "outbox_retention"):
            setattr(self, name, _positive(getattr(self, name), name))
        self.retry_initial_delay = _positive(
            self.retry_initial_delay, "retry_initial_delay", allow_zero=True
        )
        self.group_wait = _positive(self.group_wait, "group_wait", allow_zero=True)
        if not isinstance(self.storm_threshold, int) or self.storm_threshold < 1:
            raise ValueError(
                f"NotificationConfig.storm_threshold must be an int >= 1, "
                f"got {self.storm_threshold!r}"
            )
        if not isinstance(self.log_file_max_bytes, int) or self.log_file_max_bytes < 1024:
            raise ValueError("NotificationConfig.log_file_max_bytes must be an int >= 1024")
        if not isinstance(self.log_file_backups, int) or self.log_file_backups < 0:
            raise ValueError("NotificationConfig.log_file_backups must be an int >= 0")

    def _validate_routing(self) -> None:
        limits: dict[NotificationChannel, float] = {}
        for key, rate in dict(self.rate_limits).items():
            try:
                limited = NotificationChannel(key)
            except ValueError:
                raise ValueError(
                    f"NotificationConfig.rate_limits: unknown channel {key!r}"
                ) from None
            limits[limited] = _positive(rate, f"rate_limits[{limited.value}]")
        self.rate_limits = limits
        routes: dict[AlertSeverity, list[NotificationChannel]] = {}
        for level, route in dict(self.severity_channels).items():
            try:
                severity = AlertSeverity(level)
            except ValueError:
                raise ValueError(
                    f"NotificationConfig.severity_channels: unknown severity {level!r}"
                ) from None
            try:
                routes[severity] = [NotificationChannel(c) for c in route]
            except ValueError as exc:
                raise ValueError(
                    f"NotificationConfig.severity_channels[{severity.value}]: {exc}"
                ) from None
        self.severity_channels = routes

    def configured_channels(self) -> list[NotificationChannel]:
        """The channels whose required fields are set, in enum order."""
        ready = {
            NotificationChannel.CONSOLE: self.console,
            NotificationChannel.FILE: bool(self.log_file),
            NotificationChannel.EMAIL: bool(self.email_from and self.email_to),
            NotificationChannel.WEBHOOK: bool(self.webhook_urls),
            NotificationChannel.SLACK: self.slack_webhook_url is not None,
            NotificationChannel.TELEGRAM: self.telegram_bot_token is not None,
            NotificationChannel.ALERTMANAGER: self.alertmanager_url is not None,
            NotificationChannel.PAGERDUTY: self.pagerduty_routing_key is not None,
        }
        return [channel for channel in NotificationChannel if ready[channel]]

    def channels_for(
        self,
        severity: AlertSeverity,
        requested: list[NotificationChannel] | None = None,
        available: list[NotificationChannel] | None = None,
    ) -> list[NotificationChannel]:
        """Where an alert goes: the rule's channels if it names any, else this severity's
        route, else every available channel (default: the configured ones). Channels
        named explicitly are kept even when not configured, so the dispatcher can record
        why they were not delivered."""
        if requested:
            return list(dict.fromkeys(requested))
        route = self.severity_channels.get(severity)
        if route is not None:
            return list(dict.fromkeys(route))
        return list(available) if available is not None else self.configured_channels()

    def rate_limit(self, channel: NotificationChannel) -> float | None:
        """Messages per second allowed for one destination of this channel, or None."""
        return self.rate_limits.get(channel)
