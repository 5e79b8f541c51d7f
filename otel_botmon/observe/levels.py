"""Shared by the built-in checks: argument validation, warning/critical levels, results.

Every built-in check validates its settings at construction with these helpers, so a
bad threshold fails where it is written (``ValueError`` naming the argument), and
builds its answer with :func:`result`, the seed's ``{'status', 'message', 'metrics'}``.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from otel_botmon.observe.health import HealthStatus

CheckResult = dict[str, Any]


def positive(what: str, value: float) -> float:
    """``value`` as a float; TypeError unless a number, ValueError unless finite and > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


def check_levels(prefix: str, warning: float, critical: float, *, percent: bool = False) -> None:
    """ValueError unless 0 < warning < critical (and critical <= 100 for percentages).

    The message uses the argument names: ``cpu_warning`` for percentages,
    ``latency_warning_s`` for durations.
    """
    suffix = "" if percent else "_s"
    warning_name, critical_name = f"{prefix}_warning{suffix}", f"{prefix}_critical{suffix}"
    positive(warning_name, warning)
    positive(critical_name, critical)
    if warning >= critical:
        raise ValueError(
            f"{warning_name} ({warning}) must be below {critical_name} ({critical})"
        )
    if percent and critical > 100:
        raise ValueError(f"{critical_name} must be a percentage <= 100, got {critical}")


def http_url(what: str, url: str) -> str:
    """``url`` itself; ValueError (credentials left out) unless an http(s) URL with a host."""
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        valid = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(f"{what} must be an http(s) URL with a host, got {safe_url(str(url))!r}")
    return url


def safe_url(url: str) -> str:
    """``url`` without user info, query string or fragment, fit for messages."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else parts.path


def result(status: HealthStatus, message: str, **metrics: Any) -> CheckResult:
    """The seed's check result: ``{'status': ..., 'message': ..., 'metrics': {...}}``."""
    return {"status": status, "message": message, "metrics": metrics}


def level_for(latency: float, warning: float, critical: float) -> HealthStatus:
    """CRITICAL above ``critical``, DEGRADED above ``warning``, else HEALTHY."""
    if latency > critical:
        return HealthStatus.CRITICAL
    if latency > warning:
        return HealthStatus.DEGRADED
    return HealthStatus.HEALTHY
