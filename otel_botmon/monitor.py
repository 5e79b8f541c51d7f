"""``SystemMonitor``: the seed guide's one object that runs everything.

It owns the host observer, the health checker, the performance monitor, the alert
manager and the notification dispatcher, starts and stops them together, and offers the
seed's calls (``record_trade_execution``, ``create_custom_alert``, ``get_system_status``
...) plus JSON-ready views that the dashboard and the CLI read. Nothing here is on the
bot's hot path except the two ``record_*`` calls, which only touch OTel instruments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from otel_botmon import _fork, telemetry
from otel_botmon._internal import report_internal_error
from otel_botmon.alerting.model import AlertEventKind, AlertSeverity, AlertState, AlertType
from otel_botmon.instrument.exchange import record_api_call
from otel_botmon.instrument.trading import record_trade_execution
from otel_botmon.monitor_components import Components, build_components
from otel_botmon.monitor_config import MonitoringConfig
from otel_botmon.monitor_views import (
    SystemStatus,
    UnknownAlertError,
    UnknownSilenceError,
    alert_dict,
    health_dict,
    rule_dict,
    silence_dict,
    summary,
)
from otel_botmon.observe.checks import TradingEngineCheck
from otel_botmon.observe.health import HealthStatus
from otel_botmon.observe.trading_view import read_trading_view, recent_trades_for
from otel_botmon.performance import (
    Metric,
    MetricCategory,
    MetricsCollector,
    MetricType,
    PerformanceMonitor,
    PerformanceSample,
    kpi_table,
)
from otel_botmon.redaction import redact_text

__all__ = [
    "Metric", "MetricCategory", "MetricType", "MetricsCollector", "MonitoringConfig",
    "PerformanceMonitor", "PerformanceSample", "SystemMonitor", "SystemStatus",
    "UnknownAlertError", "UnknownSilenceError",
]

logger = logging.getLogger("otel_botmon")

CHART_FIELDS = (
    "cpu", "memory", "disk", "trade_latency_p50", "trade_latency_p95", "api_latency_avg",
    "api_latency_p95", "api_error_rate", "pnl", "win_rate",
)
"""The KPIs (``otel_botmon.query.KPIS``) the dashboard charts."""


RECENT_ALERTS = 500
"""Alerts the monitor keeps at hand for ``get_alert_history`` without asking the store."""


class SystemMonitor:
    """Coordinates monitoring: observers, health checks, alerting and notifications.

    ``SystemMonitor()`` works with no arguments (the seed's defaults). If telemetry was
    not configured yet, the monitor configures it with ``config.service_name``. The
    ``record_*`` calls work before ``start()``; background work (checks, sampling,
    alert evaluation, delivery) runs between ``await start()`` and ``await stop()``.
    """

    def __init__(self, config: MonitoringConfig | None = None) -> None:
        if config is not None and not isinstance(config, MonitoringConfig):
            raise TypeError(f"config must be a MonitoringConfig, got {type(config).__name__}")
        self.config = config or MonitoringConfig()
        if telemetry.get_telemetry() is None:
            telemetry.configure(self.config.service_name)
        parts: Components = build_components(self.config)
        self.host_observer = parts.host_observer
        self.health_checker = parts.health_checker
        self.alert_manager = parts.alert_manager
        self.notification_dispatcher = parts.dispatcher
        self.trading_engine_check: TradingEngineCheck | None = None
        self.performance_monitor = PerformanceMonitor(
            self.config.history_size, host_sample=parts.host_sample
        )
        self._started_at: float | None = None
        self._started_monotonic = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._listeners: list[Callable[[], None]] = []
        # Views of the newest alerts, re-rendered by the manager's events (not on every
        # request), so the dashboard's "recent alerts" never sorts the stored history.
        self._recent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._recent_lock = threading.Lock()
        tel = telemetry.get_telemetry()
        self._recent_trades = recent_trades_for(tel.tracer_provider if tel else None)
        self._trading: dict[str, Any] = {"rate_limits": [], "pnl_by_symbol": []}
        for alert in reversed(self.alert_manager.get_alert_history(limit=RECENT_ALERTS)):
            self._recent[alert.id] = alert_dict(alert)
        self.alert_manager.add_listener(self._on_alert_event, notifiable_only=False)
        self._loop_thread: int | None = None
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """Used in a forked child, the monitor is the child's: its components let go of
        the parent's store (the child's alerts are kept in memory), threads and
        connections (their own fork hooks). Unless the fork came from the thread that
        ran the monitor's event loop, the background tasks are gone with that loop:
        ``start()`` in the child starts new ones, and ``close()`` returns promptly."""
        self._recent_lock = threading.Lock()
        if not _fork.loop_survived(self._loop_thread):
            self._started_at = None
            self._tasks = []
            self._loop_thread = None

    # --- lifecycle ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._started_at is not None

    async def start(self) -> None:
        """Start every component in the running event loop (idempotent)."""
        if self._started_at is not None:
            return
        self._started_at = time.time()
        self._loop_thread = threading.get_ident()
        self._started_monotonic = time.monotonic()  # uptime survives wall-clock changes
        self.host_observer.start()
        if self.notification_dispatcher is not None:
            await self.notification_dispatcher.start()
        await self.health_checker.start()
        await self.alert_manager.start()
        self.performance_monitor.sample()
        self._sample_trading()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._sample_loop(), name="botmon-performance"),
            loop.create_task(self._status_log_loop(), name="botmon-status-log"),
        ]

    async def stop(self) -> None:
        """Stop every component; results, history and alerts are kept."""
        if self._started_at is None:
            return
        self._started_at = None
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for stop in (self.alert_manager.stop, self.health_checker.stop):
            try:
                await stop()
            except Exception as exc:
                report_internal_error("monitor.stop", exc)
        if self.notification_dispatcher is not None:
            try:
                await self.notification_dispatcher.stop()
            except Exception as exc:
                report_internal_error("monitor.stop", exc)
        with contextlib.suppress(Exception):
            self.host_observer.stop()

    def close(self) -> None:
        """Release the alert store and the notification outbox (after ``stop()``).

        Undelivered notifications stay in the outbox file for the next run.
        """
        for close in (
            getattr(self.notification_dispatcher, "close", None), self.alert_manager.close,
        ):
            if close is not None:
                try:
                    close()
                except Exception as exc:
                    report_internal_error("monitor.close", exc)

    async def _sample_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.metrics_collection_interval)
            try:
                # Collecting the reader walks every series: keep it off the event loop.
                await asyncio.to_thread(self.performance_monitor.sample)
                await asyncio.to_thread(self._sample_trading)
                self._notify_listeners()
            except Exception as exc:
                report_internal_error("monitor.sample", exc)

    def _sample_trading(self) -> None:
        tel = telemetry.get_telemetry()
        if tel is None:
            return
        try:
            self._trading = read_trading_view(tel.metric_reader.get_metrics_data())
        except Exception as exc:
            report_internal_error("monitor.trading_view", exc)

    async def _status_log_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_update_interval)
            try:
                status = self.get_system_status()
                logger.info(
                    "otel_botmon status: %s, %d active alerts, up %.0f s",
                    status.overall_health.value, status.active_alerts, status.uptime_seconds,
                )
            except Exception as exc:
                report_internal_error("monitor.status_log", exc)

    # --- the seed's recording calls ---------------------------------------------------

    def record_trade_execution(
        self, symbol: str, side: str, quantity: float, price: float, execution_time: float,
    ) -> None:
        """Record a filled trade that took ``execution_time`` milliseconds."""
        record_trade_execution(symbol, side, quantity, price, execution_time)

    def record_api_call(self, endpoint: str, response_time: float, status_code: int) -> None:
        """Record an exchange API call that took ``response_time`` milliseconds."""
        record_api_call(endpoint, response_time, status_code)

    def heartbeat(self) -> None:
        """Tell the ``trading_engine`` health check the bot's loop is alive.

        The first call registers that check (stale after ``heartbeat_max_age``
        seconds), so bots that never call it are not reported dead.
        """
        check = self.trading_engine_check
        if check is None:
            check = TradingEngineCheck(max_age_s=self.config.heartbeat_max_age)
            self.trading_engine_check = check
            self.health_checker.register_health_check("trading_engine", check)
        check.heartbeat()

    # --- alerts -----------------------------------------------------------------------

    async def create_custom_alert(
        self,
        title: str,
        message: str,
        severity: AlertSeverity = AlertSeverity.WARNING,
        alert_type: AlertType = AlertType.CUSTOM,
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """Raise an alert from code; returns its id (use it to acknowledge or resolve)."""
        alert = await _maybe_await(self.alert_manager.create_custom_alert(
            title=title, message=message, severity=AlertSeverity(severity),
            alert_type=AlertType(alert_type), labels=dict(labels or {}),
        ))
        return alert if isinstance(alert, str) else str(alert.id)

    async def acknowledge_alert(
        self, alert_id: str, user: str, *, note: str | None = None,
    ) -> dict[str, Any]:
        """Mark the alert acknowledged by ``user`` (with an optional ``note``); returns
        its view. Raises ``UnknownAlertError`` when no alert has that id."""
        self._require_alert(alert_id)
        if note:
            await _maybe_await(self.alert_manager.acknowledge_alert(alert_id, user, note=note))
        else:
            await _maybe_await(self.alert_manager.acknowledge_alert(alert_id, user))
        return self._alert_view(alert_id)

    async def resolve_alert(
        self, alert_id: str, user: str | None = None, *, note: str | None = None,
    ) -> dict[str, Any]:
        """Resolve the alert by hand; returns its view. ``UnknownAlertError`` if unknown."""
        self._require_alert(alert_id)
        if note:
            await _maybe_await(self.alert_manager.resolve_alert(alert_id, user, note=note))
        elif user is None:
            await _maybe_await(self.alert_manager.resolve_alert(alert_id))
        else:
            await _maybe_await(self.alert_manager.resolve_alert(alert_id, user))
        return self._alert_view(alert_id)

    # --- silences ---------------------------------------------------------------------

    def get_silences(self) -> list[dict[str, Any]]:
        """Silences that are active or scheduled, soonest ending first (expired ones are
        dropped when expired by hand)."""
        now = self.alert_manager.clock()
        views = [silence_dict(s, now) for s in self.alert_manager.get_silences()
                 if s.ends_at > now]
        return sorted(views, key=lambda v: v["ends_at"])

    async def add_silence(
        self, matchers: list[str] | dict[str, str], duration_s: float, *, comment: str = "",
        created_by: str = "", starts_at: float | None = None,
    ) -> dict[str, Any]:
        """Silence alerts whose labels match every matcher (``alertname="x"``,
        ``severity=~"warning|info"``) for ``duration_s``; ValueError on a bad matcher.
        Returns once the silence is stored (it survives a crash from then on)."""
        silence_id = await self.alert_manager.add_silence(
            matchers, starts_at=starts_at, duration_s=duration_s, created_by=created_by,
            comment=comment,
        )
        self._notify_listeners()
        return self._silence_view(silence_id)

    async def expire_silence(self, silence_id: str) -> dict[str, Any]:
        """End a silence now; returns its last view once the end is stored.
        ``UnknownSilenceError`` if unknown."""
        view = self._silence_view(silence_id)
        await self.alert_manager.remove_silence(silence_id)
        view["state"] = "expired"
        self._notify_listeners()
        return view

    def _silence_view(self, silence_id: str) -> dict[str, Any]:
        now = self.alert_manager.clock()
        for silence in self.alert_manager.get_silences():
            if silence.id == silence_id:
                return silence_dict(silence, now)
        raise UnknownSilenceError(silence_id)

    def require_actionable(self, alert_id: str) -> None:
        """``UnknownAlertError`` unless an alert with this id can be acknowledged or
        resolved (any state but INACTIVE)."""
        self._require_alert(alert_id)

    def get_alert(self, alert_id: str, *, with_events: bool = False) -> dict[str, Any] | None:
        """The alert's view, or ``None`` when unknown. ``with_events`` adds its event log
        (fired, acknowledged, every notification attempt, resolved ...)."""
        alert = self.alert_manager.get_alert(alert_id)
        return None if alert is None else alert_dict(alert, with_events=with_events)

    def get_active_alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts, most severe and newest first."""
        alerts = [alert_dict(a) for a in self.alert_manager.get_active_alerts()]
        order = {s.value: s.rank for s in AlertSeverity}
        alerts.sort(key=lambda a: (-order.get(a["severity"], 0), -(a["started_at"] or 0)))
        return alerts

    def get_alert_history(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` alerts of any state, newest first."""
        if limit > RECENT_ALERTS:
            return [alert_dict(a) for a in self.alert_manager.get_alert_history(limit=limit)]
        with self._recent_lock:
            views = list(self._recent.values())
        views.sort(key=lambda a: a["started_at"] or 0.0, reverse=True)
        return [dict(view) for view in views[: max(0, limit)]]

    def _require_alert(self, alert_id: str) -> None:
        alert = self.alert_manager.get_alert(alert_id)
        if alert is None or alert.state is AlertState.INACTIVE:
            # an inactive alert (pending that cleared) never fired: nothing to act on
            raise UnknownAlertError(alert_id)

    def _alert_view(self, alert_id: str) -> dict[str, Any]:
        view = self.get_alert(alert_id)
        if view is None:  # pragma: no cover - the store does not forget on its own
            raise UnknownAlertError(alert_id)
        return view

    # --- health -----------------------------------------------------------------------

    def register_health_check(self, name: str, check: Any, **options: Any) -> None:
        """Shortcut for ``health_checker.register_health_check``."""
        self.health_checker.register_health_check(name, check, **options)

    async def force_health_check(self) -> dict[str, Any]:
        """Run every health check now; returns the fresh health view."""
        await self.health_checker.force_check()
        self._notify_listeners()
        return self.get_health_details()

    def get_health_details(self) -> dict[str, Any]:
        """Overall health and every component's latest result."""
        results = self.health_checker.get_all_health()
        return {
            "overall_health": self.health_checker.overall_status().value,
            "components": {
                name: health_dict(result) for name, result in sorted(results.items())
            },
        }

    # --- status and performance ------------------------------------------------------

    def get_system_status(self) -> SystemStatus:
        """Overall health, uptime, active alerts by severity and component health."""
        by_severity = {s.value: 0 for s in AlertSeverity}
        firing: list[Any] = []
        pending = 0
        for alert in self.alert_manager.get_active_alerts():
            if alert.state is not AlertState.FIRING:
                pending += 1
                continue
            firing.append(alert)
            by_severity[alert.severity.value] = by_severity.get(alert.severity.value, 0) + 1
        firing.sort(key=lambda a: (-a.severity.rank, a.fired_at or a.started_at))
        components = {
            name: result.status.value
            for name, result in sorted(self.health_checker.get_all_health().items())
        }
        overall = self.health_checker.overall_status()
        if not components:
            overall = HealthStatus.HEALTHY if self.running else HealthStatus.UNKNOWN
        if by_severity["critical"] or by_severity["emergency"]:
            overall = HealthStatus.worst([overall, HealthStatus.CRITICAL])
        elif by_severity["warning"]:
            overall = HealthStatus.worst([overall, HealthStatus.DEGRADED])
        started = self._started_at
        return SystemStatus(
            overall_health=overall,
            active_alerts=sum(by_severity.values()),
            alerts_by_severity=by_severity,
            components=components,
            uptime_seconds=(
                time.monotonic() - self._started_monotonic if started is not None else 0.0
            ),
            started_at=started,
            running=started is not None,
            pending_alerts=pending,
            firing=[{
                "id": a.id, "title": redact_text(a.title), "severity": a.severity.value,
                "fired_at": a.fired_at, "acknowledged_by": a.acknowledged_by,
            } for a in firing],
        )

    def get_performance_summary(
        self, history_limit: int = 120, *, with_table: bool = True
    ) -> dict[str, Any]:
        """The latest KPIs, their table (title, unit, window, definition: the alert
        rules' own; left out with ``with_table=False``), chart columns and custom
        metrics."""
        latest = self.performance_monitor.latest
        return {
            **({"kpis": kpi_table()} if with_table else {}),
            "current": latest.to_dict() if latest is not None else None,
            "history": self.performance_monitor.series(CHART_FIELDS, limit=history_limit),
            "custom_metrics": self.performance_monitor.metrics_collector.summaries(),
        }

    def get_dashboard_data(self, alert_limit: int = 20, history_limit: int = 120) -> dict[str, Any]:
        """Everything the dashboard shows, in one JSON-ready mapping.

        Alerts come in their short form (``SUMMARY_FIELDS``); ``get_alert`` has the rest.
        """
        return {
            "status": self.get_system_status().to_dict(),
            "health": self.get_health_details(),
            "performance": self.get_performance_summary(history_limit, with_table=False),
            "kpis": kpi_table(),
            "alerts": {
                "active": [summary(a) for a in self.get_active_alerts()],
                "recent": [summary(a) for a in self.get_alert_history(limit=alert_limit)],
            },
            "silences": self.get_silences(),
            "trading": self.get_trading_view(),
            "rules": [rule_dict(r) for r in self.alert_manager.rules],
        }

    def get_trading_view(self) -> dict[str, Any]:
        """Rate-limit usage per exchange/budget/interval, realized P&L by symbol (as of the
        last sample) and the most recent trades, newest first."""
        return {**self._trading, "recent_trades": self._recent_trades.snapshot(20)}

    # --- change notifications (for push updates) --------------------------------------

    def add_update_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (in the event loop's thread) whenever something changed."""
        self._listeners.append(callback)

    def remove_update_listener(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(callback)

    def _on_alert_event(self, alert: Any, event: Any) -> None:
        if event.kind is AlertEventKind.INACTIVE:
            # a pending alert that never fired: gone from every list, not a ghost
            with self._recent_lock:
                self._recent.pop(alert.id, None)
            self._notify_listeners()
            return
        view = alert_dict(alert)
        with self._recent_lock:
            self._recent[alert.id] = view
            self._recent.move_to_end(alert.id)
            while len(self._recent) > RECENT_ALERTS:
                self._recent.popitem(last=False)
        self._notify_listeners()

    def _notify_listeners(self) -> None:
        for callback in list(self._listeners):
            try:
                callback()
            except Exception as exc:
                report_internal_error("monitor.listener", exc)


async def _maybe_await(value: Any) -> Any:
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value
    return value
