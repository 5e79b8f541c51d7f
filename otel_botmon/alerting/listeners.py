"""Who hears about alert events: callbacks ``(alert, event)``, each either for every event
or only for events to notify. A callback that raises is reported as an internal error and
the others still run."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from otel_botmon._internal import report_internal_error
from otel_botmon.alerting.model import Alert, AlertEvent

Listener = Callable[[Alert, AlertEvent], None]


class ListenerSet:
    """Thread-safe list of listeners."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[tuple[Listener, bool]] = []

    def add(self, callback: Listener, *, notifiable_only: bool = True) -> None:
        with self._lock:
            self._listeners.append((callback, notifiable_only))

    def remove(self, callback: Listener) -> None:
        with self._lock:
            self._listeners = [(cb, only) for cb, only in self._listeners if cb != callback]

    def dispatch(
        self, events: Iterable[AlertEvent], lookup: Callable[[str], Alert | None],
    ) -> None:
        """Call the listeners for each event whose alert ``lookup`` finds."""
        with self._lock:
            listeners = list(self._listeners)
        if not listeners:
            return
        for event in events:
            alert = lookup(event.alert_id)
            if alert is None:
                continue
            for callback, notifiable_only in listeners:
                if notifiable_only and not event.notify:
                    continue
                try:
                    callback(alert, event)
                except Exception as exc:
                    report_internal_error("alerting.listener", exc)
