"""Guide: Configuration / MonitoringConfig."""
# ruff: noqa: W293  (the guide's snippet, kept verbatim)

from otel_botmon import MonitoringConfig, NotificationConfig

config = MonitoringConfig(
    # Health checking
    health_check_interval=30.0,  # seconds
    
    # Performance monitoring
    metrics_collection_interval=5.0,  # seconds
    
    # Alert thresholds
    cpu_warning_threshold=75.0,      # %
    cpu_critical_threshold=90.0,     # %
    memory_warning_threshold=80.0,   # %
    memory_critical_threshold=95.0,  # %
    disk_warning_threshold=85.0,     # %
    disk_critical_threshold=95.0,    # %
    api_response_time_warning=1000.0,   # ms
    api_response_time_critical=5000.0,  # ms
    
    # Monitoring intervals
    alert_check_interval=10.0,       # seconds
    status_update_interval=60.0,     # seconds
    
    # Notification configuration
    notification_config=NotificationConfig(...)
)

print(config)
