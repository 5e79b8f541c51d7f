"""A logging filter that scrubs secrets from the records of HTTP client libraries.

httpx logs every request's full URL at INFO, urllib3 (requests) at DEBUG, and a signed
exchange request carries its ``signature=`` and key in that URL; a Telegram bot token or
a Slack webhook secret lives in the URL path. ``configure()`` attaches the filter, so the
bot's own exchange calls are covered from the start, not only once a notifier exists.

A filter on a logger sees only the records logged on that very logger (not those
propagated from its children), so the filter goes on each logger that writes URLs.
"""

from __future__ import annotations

import logging
from typing import Final

from otel_botmon._redact_scan import scrub_literals
from otel_botmon._sent import SENT
from otel_botmon.redaction import redact_text

__all__ = ["REDACTED_LOGGERS", "RedactingLogFilter", "install_log_redaction"]

REDACTED_LOGGERS: Final = (
    "httpx",
    "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
    "urllib3.connectionpool",
    "aiohttp.client", "aiohttp.internal",
    "websockets.client",
    "websocket",  # websocket-client (pybit) with enableTrace(): every frame sent
    "ccxt.base.exchange",
    "binance.base_client",  # python-binance verbose=True: signed URL, headers, body
    "otel_botmon", "otel_botmon.alerting", "otel_botmon.alerting.store",
    "otel_botmon.query._history", "otel_botmon.dashboard", "otel_botmon.demo",
    "otel_botmon.exporters.influxdb", "otel_botmon.instrument", "otel_botmon.notify",
)


_FORMATTER: Final = logging.Formatter()


class RedactingLogFilter(logging.Filter):
    """Rewrites a record whose formatted message holds a secret; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own handling
            return True
        sent = SENT.get()  # an exchange request under way: its signature, in any layout
        redacted = redact_text(scrub_literals(message, sent) if sent else message)
        if redacted != message:
            record.msg = redacted
            record.args = ()
        if record.exc_info and not record.exc_text:
            # Formatters print exc_text when it is set: the traceback quotes the message.
            record.exc_text = redact_text(
                scrub_literals(_FORMATTER.formatException(record.exc_info), sent))
        return True


_FILTER: Final = RedactingLogFilter()


def install_log_redaction(names: tuple[str, ...] = REDACTED_LOGGERS) -> None:
    """Attach the redacting filter to these loggers (idempotent)."""
    for name in names:
        target = logging.getLogger(name)
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)
