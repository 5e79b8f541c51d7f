"""A span processor that wraps another one and only changes ``on_end``."""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor


class DelegatingSpanProcessor(SpanProcessor):
    """Forwards everything to ``delegate``; subclasses override :meth:`on_end`."""

    def __init__(self, delegate: SpanProcessor) -> None:
        self._delegate = delegate
        # Start and ending go straight to the delegate's bound methods: one Python call
        # less per span on the bot's path.
        self.on_start = delegate.on_start  # type: ignore[method-assign]
        self._on_ending = delegate._on_ending  # type: ignore[method-assign]

    @property
    def delegate(self) -> SpanProcessor:
        """The wrapped processor."""
        return self._delegate

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._delegate.on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Span) -> None:
        self._delegate._on_ending(span)

    def on_end(self, span: ReadableSpan) -> None:
        self._delegate.on_end(span)

    def shutdown(self) -> None:
        self._delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._delegate.force_flush(timeout_millis)
