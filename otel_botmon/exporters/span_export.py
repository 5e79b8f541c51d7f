"""OTLP/HTTP span export on one thread: batching, redaction, encoding and sending.

The SDK's BatchSpanProcessor wakes its own thread for every batch, which then handed the
encoded batch to the sender thread (exporters/handoff.py), which woke in turn to post it.
Each wake-up of a background thread is a chance for it to take the GIL from the bot's
thread, and each time the bot's call waits for it (up to the interpreter's switch
interval, 5 ms): that is what the bot's latency tail saw with a healthy endpoint.

:class:`CompactSpanExport` is the processor and the sender in one: finished spans wait
as :func:`~otel_botmon.exporters.compact_spans.compact` tuples in a bounded queue, and
one daemon thread wakes when a batch is full (or the schedule delay passed, or a flush
asks), then redacts, encodes and posts batch after batch until the queue is short
again. The bot's thread never waits on the network: while the thread is stuck on an
endpoint that does not answer and the queue is full, finished spans are dropped at the
door and counted (``dropped_spans``), before anything keeps them alive.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.environment_variables import OTEL_BSP_MAX_EXPORT_BATCH_SIZE
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import TraceFlags

from otel_botmon import _fork
from otel_botmon.exporters.compact_spans import EncodeCompactSpans, compact

__all__ = ["CompactSpanExport"]

logger = logging.getLogger("otel_botmon")

_SENDER_SPANS = 8 * 512  # HandoffSpanExporter's default max_batches of the SDK's size

_DEFAULT_BATCH = 2048
"""Spans per request unless ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` says otherwise: four
times the SDK batch processor's 512. Every request costs the bot's thread the same
few GIL hand-backs whatever its size (the thread wakes, sends, reads the answer: each
time it takes the GIL back from a busy bot, the bot's call in flight waits), so in a
burst of trades four times fewer requests interrupt four times fewer calls. A request
is also bounded in bytes (:data:`~otel_botmon.exporters.compact_spans.MAX_REQUEST_BYTES`)."""

_DEFAULT_QUEUE = 2048  # the SDK batch processor's default max_queue_size


def _positive(name: str, value: int, default: int) -> int:
    """``value``, or ``default`` (with a warning) when it is not a positive number: the
    SDK's batch processor refuses such sizes; here a batch of none would never leave
    while the thread spun, waking for a batch that is always full."""
    if value >= 1:
        return value
    logger.warning("otel_botmon: span export %s must be positive, not %r; using %d",
                   name, value, default)
    return default


class CompactSpanExport(SpanProcessor):
    """Queues finished, sampled spans and exports them through ``exporter`` (an exporter
    taking :class:`~otel_botmon.exporters.compact_spans.EncodedSpans`, such as
    otel_botmon.exporters.otlp_http.OTLPSpanExporter) on one daemon thread.

    The schedule delay is the SDK batch processor's (``OTEL_BSP_SCHEDULE_DELAY``);
    batches hold ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` spans if that is set, else 2,048
    (:data:`_DEFAULT_BATCH`: fewer requests interrupt the bot less), and a request at
    most 4 MiB; the queue holds ``OTEL_BSP_MAX_QUEUE_SIZE`` spans plus 4,096 (see
    ``__init__``).
    """

    def __init__(
        self,
        exporter: SpanExporter,
        max_queue_size: int | None = None,
        max_export_batch_size: int | None = None,
        schedule_delay_millis: float | None = None,
    ) -> None:
        defaults: Any = BatchSpanProcessor
        self._batch_size = _positive("max_export_batch_size", max_export_batch_size or (
            defaults._default_max_export_batch_size()
            if os.environ.get(OTEL_BSP_MAX_EXPORT_BATCH_SIZE, "").strip() else _DEFAULT_BATCH),
            _DEFAULT_BATCH)
        # By default as many spans as the batch processor's queue and the sender's queued
        # batches held together when two threads did this: the thread keeps up with a
        # burst of trades while the bot holds the GIL.
        queue_default = _DEFAULT_QUEUE + _SENDER_SPANS
        self._max_queue = _positive("max_queue_size", max_queue_size or (
            defaults._default_max_queue_size() + _SENDER_SPANS), queue_default)
        self._batch_size = min(self._batch_size, self._max_queue)
        self._delay_s = (schedule_delay_millis or defaults._default_schedule_delay_millis()) / 1e3
        self._exporter = exporter
        self._encode = EncodeCompactSpans(exporter)
        self._spans: deque[tuple[Any, ...]] = deque()
        self._cv = threading.Condition()
        self._woken = False  # a full batch was announced: no further notify until taken
        self._taken = 0  # spans the thread has taken from the queue (it alone counts)
        self._done = 0  # ... and finished exporting
        self._flush_to = 0  # export until _taken reaches this, batch full or not
        self._closed = False
        self._warned = False
        self.dropped_spans = 0
        self._thread = self._start()
        _fork.register(self)

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="botmon-span-export", daemon=True)
        thread.start()
        return thread

    def _after_fork_in_child(self) -> None:
        """The child exports its own spans: the parent's queue and HTTP connections stay
        with the parent, the lock is new and so is the thread (it did not survive)."""
        self._cv = threading.Condition()
        self._spans.clear()
        self._woken = False
        self._taken = self._done = self._flush_to = 0
        _fork.reset_connections(self._exporter)
        if not self._closed:
            self._thread = self._start()

    # --- the bot's side -----------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def _on_ending(self, span: Span) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        try:  # the SDK's field: SpanContext is a tuple, trace flags its 4th item
            sampled = span._context[3] & TraceFlags.SAMPLED  # type: ignore[index]
        except (AttributeError, TypeError, IndexError):
            context = span.context
            sampled = context is not None and context.trace_flags.sampled
        if not sampled or self._closed:
            return
        spans = self._spans
        if len(spans) >= self._max_queue:
            self._drop()
            return
        spans.append(compact(span))
        if len(spans) >= self._batch_size and not self._woken:
            self._woken = True
            with self._cv:
                self._cv.notify()

    def _drop(self) -> None:
        self.dropped_spans += 1  # not atomic across bot threads; approximate is enough
        if not self._warned:
            self._warned = True
            logger.warning(
                "otel_botmon: the span endpoint is not keeping up; dropping finished spans "
                "(counted in dropped_spans) so the bot never waits")

    # --- the export thread --------------------------------------------------------------

    def _ready(self) -> bool:
        return (self._closed or len(self._spans) >= self._batch_size
                or self._taken < self._flush_to)

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(self._ready, self._delay_s)
                if self._closed:
                    return
                self._woken = False
            self._export_queued()

    def _export_queued(self) -> None:
        """Batches while a full one waits or a flush asks for more; at least one (the
        schedule delay passed)."""
        spans = self._spans
        first = True
        while spans and not self._closed and (
                first or len(spans) >= self._batch_size or self._taken < self._flush_to):
            first = False
            with self._cv:  # taken and counted at once, as force_flush reads them
                batch = [spans.popleft() for _ in range(min(self._batch_size, len(spans)))]
                self._taken += len(batch)
            if not batch:  # shutdown emptied the queue meanwhile
                return
            try:
                self._encode.export(batch)  # type: ignore[arg-type]
            except Exception as exc:  # the exporter normally logs its own failures
                logger.debug("otel_botmon: span export failed: %s", exc)
            finally:
                with self._cv:
                    self._done += len(batch)
                    self._cv.notify_all()

    # --- flush and shutdown -------------------------------------------------------------

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait until the spans queued now are exported, at most ``timeout_millis``."""
        with self._cv:
            if self._closed:
                return True
            target = self._taken + len(self._spans)
            self._flush_to = max(self._flush_to, target)
            self._cv.notify_all()
            return self._cv.wait_for(lambda: self._done >= target or self._closed,
                                     max(0.0, timeout_millis / 1000))

    def shutdown(self) -> None:
        # Give queued spans a short chance to leave, then stop without waiting on the wire.
        started = time.monotonic()
        self.force_flush(1_000)
        with self._cv:
            self._closed = True
            self._spans.clear()
            self._cv.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(max(0.0, 1.0 - (time.monotonic() - started)))
        # The exporter's shutdown may itself wait on the network: never on the caller's time.
        threading.Thread(target=self._exporter.shutdown, name="botmon-export-close",
                         daemon=True).start()
