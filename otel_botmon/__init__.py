"""otel_botmon: OpenTelemetry monitoring for trading bots."""

from otel_botmon.telemetry import __version__

__all__ = ["__version__"]
