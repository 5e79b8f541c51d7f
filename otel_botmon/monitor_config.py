"""``MonitoringConfig``: the seed's settings for the SystemMonitor, validated at construction."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from otel_botmon._suggest import reject_unknown_keywords

if TYPE_CHECKING:
    from otel_botmon.notify import NotificationConfig


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"MonitoringConfig.{name} must be a finite number, got {value!r}")
    if value <= 0:
        raise ValueError(f"MonitoringConfig.{name} must be > 0, got {value!r}")


@reject_unknown_keywords
@dataclass
class MonitoringConfig:
    """Intervals, thresholds and notification settings of a :class:`SystemMonitor`.

    Defaults are the seed guide's. Raises ``ValueError`` naming the field when a field
    has the wrong type, an interval is not a positive finite number, a percentage is
    outside (0, 100], or a warning threshold is not below its critical one; raises
    ``TypeError`` naming an unknown keyword and the closest field (``alert_check_intervall=``:
    did you mean 'alert_check_interval'?).
    """

    health_check_interval: float = 30.0
    """Seconds between runs of each health check."""
    metrics_collection_interval: float = 5.0
    """Seconds between host samples and performance-history samples."""
    cpu_warning_threshold: float = 75.0
    """Host CPU percent that raises a warning."""
    cpu_critical_threshold: float = 90.0
    memory_warning_threshold: float = 80.0
    """Host memory percent that raises a warning."""
    memory_critical_threshold: float = 95.0
    disk_warning_threshold: float = 85.0
    """Fullest filesystem's percent used that raises a warning."""
    disk_critical_threshold: float = 95.0
    api_response_time_warning: float = 1000.0
    """Exchange API latency in milliseconds that makes the API component degraded."""
    api_response_time_critical: float = 5000.0
    alert_check_interval: float = 10.0
    """Seconds between alert-rule evaluations."""
    status_update_interval: float = 60.0
    """Seconds between status lines in the log (the dashboard pushes on its own interval)."""
    notification_config: NotificationConfig | None = None
    """Where notifications go; ``None`` means console only."""
    service_name: str = "trading-bot"
    """``service.name`` used when the monitor has to configure telemetry itself."""
    history_size: int = 720
    """Performance samples kept for charts (720 x 5 s = one hour)."""
    alert_store_path: str | None = None
    """SQLite file for alerts and the notification outbox; ``None`` keeps them in memory."""
    alert_for_outage_tolerance: float = 3600.0
    """Seconds: after a restart, a pending alert's ``for`` timer goes on where it stopped
    if the process was down at most this long, else it starts anew (Prometheus'
    ``--rules.alert.for-outage-tolerance``). The outage never counts as time held."""
    alert_for_grace_period: float = 600.0
    """Seconds: a pending alert restored after a restart fires no sooner than this long
    after it, when its rule's ``for`` is at least this long; a rule with a shorter
    ``for`` starts the timer anew (Prometheus' ``--rules.alert.for-grace-period``)."""
    default_alert_rules: bool = True
    """Register the seed's six default alert rules."""
    default_health_checks: bool = True
    """Register the system-resources check."""
    heartbeat_max_age: float = 60.0
    """Seconds without ``SystemMonitor.heartbeat()`` after which the trading engine is
    critical (half of it: degraded). The check exists once the bot first calls it."""

    def __post_init__(self) -> None:
        self._validate_types()
        for name in (
            "health_check_interval", "metrics_collection_interval",
            "alert_check_interval", "status_update_interval",
            "api_response_time_warning", "api_response_time_critical", "heartbeat_max_age",
        ):
            _check_positive(name, getattr(self, name))
        for resource in ("cpu", "memory", "disk"):
            warning = getattr(self, f"{resource}_warning_threshold")
            critical = getattr(self, f"{resource}_critical_threshold")
            for kind, value in (("warning", warning), ("critical", critical)):
                _check_positive(f"{resource}_{kind}_threshold", value)
                if value > 100:
                    raise ValueError(
                        f"MonitoringConfig.{resource}_{kind}_threshold is a percentage "
                        f"(0, 100], got {value!r}"
                    )
            if warning >= critical:
                raise ValueError(
                    f"MonitoringConfig.{resource}_warning_threshold ({warning}) must be below "
                    f"{resource}_critical_threshold ({critical})"
                )
        for name in ("alert_for_outage_tolerance", "alert_for_grace_period"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or value < 0):
                raise ValueError(f"MonitoringConfig.{name} must be a finite number of "
                                 f"seconds >= 0, got {value!r}")
        if self.api_response_time_warning >= self.api_response_time_critical:
            raise ValueError(
                "MonitoringConfig.api_response_time_warning must be below "
                "api_response_time_critical"
            )
        if isinstance(self.history_size, bool) or not isinstance(self.history_size, int) or (
            self.history_size < 1
        ):
            raise ValueError(
                f"MonitoringConfig.history_size must be an int >= 1, got {self.history_size!r}"
            )
        if not self.service_name.strip():
            raise ValueError("MonitoringConfig.service_name must be a non-empty string")

    def _validate_types(self) -> None:
        # A wrong type was kept and failed far from here, or never: alert_store_path=5
        # opened a SQLite file named "5"; default_alert_rules="no" registered the rules.
        from otel_botmon.notify import NotificationConfig

        notification: object = self.notification_config
        if notification is not None and not isinstance(notification, NotificationConfig):
            raise ValueError(
                "MonitoringConfig.notification_config must be a NotificationConfig or None, "
                f"got {type(notification).__name__}"
            )
        path: object = self.alert_store_path
        if isinstance(path, os.PathLike):  # a pathlib.Path is a file name too
            path = self.alert_store_path = os.fspath(path)
        if path is not None and not (isinstance(path, str) and path):
            raise ValueError(
                "MonitoringConfig.alert_store_path must be a file name (str or path) or None, "
                f"got {path!r}"
            )
        for name in ("default_alert_rules", "default_health_checks"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ValueError(f"MonitoringConfig.{name} must be True or False, got {value!r}")
        if not isinstance(self.service_name, str):
            raise ValueError(
                "MonitoringConfig.service_name must be a non-empty string, "
                f"got {type(self.service_name).__name__}"
            )

    def thresholds(self) -> dict[str, float]:
        """The threshold fields by name (for rules and checks)."""
        return {
            f.name: float(getattr(self, f.name))
            for f in fields(self)
            if f.name.endswith(("_threshold", "_warning", "_critical"))
        }
