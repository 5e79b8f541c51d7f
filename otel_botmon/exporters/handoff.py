"""Exporters that never make their caller wait on the network.

The SDK's BatchSpanProcessor and PeriodicExportingMetricReader call ``export()`` on their
worker threads and wait for it. Against an endpoint that accepts connections but never
answers, each export takes the full exporter timeout: the span queue fills, the SDK then
logs "Queue full" for every span on the bot's call path, and shutdown waits out the
timeout. Wrapping the OTLP exporters here hands each batch to one daemon sender thread and
returns at once. Batches wait in a short bounded queue; when the sender is stuck and the
queue is full the oldest batch is dropped and counted (metrics are handed over cumulative,
and deltas are computed on the sender thread, so a later batch carries what a dropped one
had). ``shutdown()`` never blocks on a stuck request.

While that queue is full, :class:`ShedWhenBacklogged` drops finished spans at the door
instead of letting them wait in the batch processor only to push out older batches later:
a span that is kept alive is promoted through the garbage collector's generations, and
thousands of them (a stuck endpoint) turned into full collections on the bot's thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Generic, TypeVar

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_botmon import _fork
from otel_botmon._span_processing import DelegatingSpanProcessor

logger = logging.getLogger("otel_botmon")

ResultT = TypeVar("ResultT")


class _Sender(Generic[ResultT]):
    """One daemon thread sending queued batches through ``inner.export``."""

    def __init__(self, inner: Any, success: ResultT, max_batches: int, name: str) -> None:
        self.inner = inner
        self.success = success
        self.dropped_batches = 0
        self._queue: deque[tuple[Any, dict[str, Any]]] = deque()
        self._max_batches = max_batches
        self._cv = threading.Condition()
        self._closed = False
        self._busy = False
        self._warned = False
        self._name = name
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """The child sends its own data: the parent's batches and HTTP connections stay
        with the parent, the lock is new (another thread may have held it) and so is
        the sender thread (it did not survive the fork)."""
        self._cv = threading.Condition()
        self._queue.clear()
        self._busy = False
        _fork.reset_connections(self.inner)
        if not self._closed:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    @property
    def backlogged(self) -> bool:
        """Whether the queue is full (the sender is behind; more would only be dropped)."""
        return len(self._queue) >= self._max_batches

    def submit(self, batch: Any, kwargs: dict[str, Any]) -> ResultT:
        with self._cv:
            if self._closed:
                return self.success
            if len(self._queue) >= self._max_batches:
                self._queue.popleft()
                self.dropped_batches += 1
                if not self._warned:
                    self._warned = True
                    logger.warning(
                        "otel_botmon: the telemetry endpoint is not keeping up; dropping the "
                        "oldest export batches (counted in dropped_batches) so the bot never waits"
                    )
            self._queue.append((batch, kwargs))
            self._cv.notify()
        return self.success

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                batch, kwargs = self._queue.popleft()
                self._busy = True
            try:
                self.inner.export(batch, **kwargs)
            except Exception as exc:  # the exporter normally logs its own failures
                logger.debug("otel_botmon: export failed: %s", exc)
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    def flush(self, timeout_s: float) -> bool:
        """Wait until the queue is drained, at most ``timeout_s``."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._queue and not self._busy, timeout_s)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._queue.clear()
            self._cv.notify_all()
        # The inner shutdown may itself wait on the network: never on the caller's time.
        threading.Thread(target=self.inner.shutdown, name="botmon-export-close",
                         daemon=True).start()


class HandoffSpanExporter(SpanExporter):
    """A SpanExporter whose ``export()`` returns at once (see the module docstring)."""

    def __init__(self, inner: SpanExporter, max_batches: int = 8) -> None:
        self._sender: _Sender[SpanExportResult] = _Sender(
            inner, SpanExportResult.SUCCESS, max_batches, "botmon-span-export"
        )

    @property
    def dropped_batches(self) -> int:
        return self._sender.dropped_batches

    @property
    def backlogged(self) -> bool:
        """Whether queued batches are waiting at the limit (see :class:`ShedWhenBacklogged`)."""
        return self._sender.backlogged

    def export(self, spans: Any) -> SpanExportResult:
        return self._sender.submit(spans, {})

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._sender.flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        # Give queued spans a short chance to leave, then stop without waiting on the wire.
        self._sender.flush(1.0)
        self._sender.close()


class HandoffMetricExporter(MetricExporter):
    """A MetricExporter whose ``export()`` returns at once; keeps the inner preferences."""

    def __init__(self, inner: MetricExporter, max_batches: int = 4) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._sender: _Sender[MetricExportResult] = _Sender(
            inner, MetricExportResult.SUCCESS, max_batches, "botmon-metric-export"
        )

    @property
    def dropped_batches(self) -> int:
        return self._sender.dropped_batches

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return self._sender.submit(metrics_data, {"timeout_millis": timeout_millis})

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._sender.flush(timeout_millis / 1000)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        # Give queued data a short chance to leave, then stop without waiting on the wire.
        self._sender.flush(min(timeout_millis / 1000, 1.0))
        self._sender.close()


class ShedWhenBacklogged(DelegatingSpanProcessor):
    """Forwards finished spans to ``delegate`` unless ``handoff``'s queue is full.

    ``ShedWhenBacklogged(BatchSpanProcessor(RedactingSpanExporter(handoff)), handoff)``:
    while the endpoint keeps every queued batch waiting, a new span would only end up
    pushing an older batch out, so it is dropped (counted in ``dropped_spans``) before
    anything retains it. Spans flow again as soon as the sender frees a queue slot.
    """

    def __init__(self, delegate: SpanProcessor, handoff: HandoffSpanExporter) -> None:
        super().__init__(delegate)
        self._sender = handoff._sender
        self.dropped_spans = 0

    def on_end(self, span: ReadableSpan) -> None:
        sender = self._sender
        if len(sender._queue) >= sender._max_batches:  # inline ``backlogged``: every span
            self.dropped_spans += 1  # not atomic; an approximate count is enough
            return
        self._delegate.on_end(span)
