"""What the real-client tests share: everything a capture exported, as text, and the
check that no key, secret or signature is in it."""

from __future__ import annotations

from typing import Any


def everything_exported(telemetry: Any) -> str:
    """Every span (name, attributes, status, events) and every metric point's attributes."""
    parts = [repr((s.name, dict(s.attributes or {}), s.status.description,
                   [(e.name, dict(e.attributes or {})) for e in s.events]))
             for s in telemetry.spans()]
    parts += [repr((n, [dict(p.attributes) for p in m.data.data_points]))
              for n, m in telemetry.metrics().items()]
    return "\n".join(parts)


def assert_no_secrets(telemetry: Any, *secrets: str) -> str:
    """No ``secrets`` anywhere, every ``signature=`` redacted; returns the text checked."""
    text = everything_exported(telemetry)
    for secret in secrets:
        assert secret not in text
    for line in text.splitlines():
        if "signature=" in line:
            assert "signature=REDACTED" in line and "signature=0" not in line
    return text
