"""Text a bot hands over that is not valid Unicode, made valid once, at the edge.

A bot can pass label values and alert text holding lone surrogates: bytes decoded with
``surrogateescape`` (a symbol, an exchange's error text, an endpoint read from a socket)
keep each byte that is not UTF-8 as a code point U+DC80..U+DCFF. Such a string cannot be
encoded as UTF-8, so a fingerprint, an SQLite row, a JSON body or an e-mail of it would
raise. :func:`valid_text` reads each surrogate code point as U+FFFD, as Go (Prometheus,
Alertmanager) reads a byte that is not UTF-8; matcher regexes read it the same way
(:mod:`otel_botmon.query._regex`), so a value matches the same before and after.

Applied where text enters: labels from the metric reader and from synthetic points
(:mod:`otel_botmon.query`), custom alerts, and :func:`otel_botmon.redaction.redact_text`
/ ``redact_labels``, which every alert title, message, annotation and label goes
through before it is stored or notified.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["valid_text"]

_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """``text`` itself when it is valid Unicode (encodable as UTF-8), else a copy with
    each surrogate code point replaced by U+FFFD. Never raises for a ``str``."""
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)
