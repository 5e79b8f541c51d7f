"""Request and response bodies of the dashboard API (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_REQUEST = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
"""Request bodies take exactly their JSON types: ``true`` is not 1 second, ``"60"`` not
60, and ``NaN``/``Infinity`` are not numbers (an integer is a number)."""


class ErrorResponse(BaseModel):
    """Every error the API returns: a short code and what went wrong."""

    error: str = Field(description="not_found, unauthorized, invalid_request, ...")
    detail: Any = Field(default=None, description="Human-readable reason or field errors")


class FiringAlert(BaseModel):
    id: str
    title: str
    severity: str
    fired_at: float | None
    acknowledged_by: str | None = None


class StatusResponse(BaseModel):
    overall_health: str = Field(description="healthy, degraded, critical or unknown")
    active_alerts: int = Field(description="Firing alerts (pending ones are not counted)")
    pending_alerts: int = Field(description="Alerts whose condition holds, not yet for long")
    alerts_by_severity: dict[str, int] = Field(description="Firing alerts by severity")
    firing: list[FiringAlert] = Field(description="Firing alerts, most severe then oldest")
    components: dict[str, str] = Field(description="Component name -> health status")
    uptime_seconds: float
    started_at: float | None = Field(description="Epoch seconds (UTC) of start()")
    running: bool
    timestamp: float


class ComponentHealth(BaseModel):
    model_config = ConfigDict(extra="allow")

    component: str
    status: str
    message: str
    metrics: dict[str, Any]
    checked_at: str
    duration_s: float


class HealthResponse(BaseModel):
    overall_health: str
    components: dict[str, ComponentHealth]


class PerformanceResponse(BaseModel):
    kpis: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Each KPI's title, unit, window (latest, 5m, since start...) and "
                    "definition: the same definitions the alert rules use")
    current: dict[str, Any] | None = Field(
        description="Latest KPI values by name (units as in kpis), or null before the first")
    history: dict[str, list[Any]] = Field(description="Chart columns, oldest first")
    custom_metrics: dict[str, dict[str, Any]]


class AlertView(BaseModel):
    """One alert. Title and message are plain text (render them as text, never HTML)."""

    model_config = ConfigDict(extra="allow")

    id: str
    title: str
    message: str
    severity: str
    alert_type: str
    state: str
    acknowledged: bool
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    rule_name: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Rule annotations (summary, runbook_url ...)")
    value: float | None = None
    started_at: float | None = None
    fired_at: float | None = None
    resolved_at: float | None = None


class AlertEventView(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: str = Field(description="pending, fired, escalated, acknowledged, resolved, notified")
    at: float
    detail: dict[str, Any] = Field(default_factory=dict)


class AlertDetailResponse(BaseModel):
    alert: AlertView
    events: list[AlertEventView]


class AlertsResponse(BaseModel):
    alerts: list[AlertView]
    count: int


class AlertActionResponse(BaseModel):
    alert: AlertView


class DashboardAlerts(BaseModel):
    active: list[AlertView]
    recent: list[AlertView]


class DashboardResponse(BaseModel):
    status: StatusResponse
    health: HealthResponse
    performance: PerformanceResponse
    alerts: DashboardAlerts
    silences: list[SilenceView] = Field(default_factory=list)
    trading: TradingView | None = None
    rules: list[RuleView] = Field(default_factory=list)
    kpis: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="The KPI table (as in /api/performance), apart from the changing "
                    "performance section so that a push does not repeat it")


class AcknowledgeRequest(BaseModel):
    """Who acknowledges the alert, and why (both optional: the whole body is)."""

    model_config = _REQUEST

    user: str | None = Field(default=None, min_length=1, max_length=100,
                             examples=["trader_john"])
    note: str | None = Field(default=None, max_length=500, examples=["looking into it"])


class ResolveRequest(BaseModel):
    """Optionally, who resolves the alert, and a note."""

    model_config = _REQUEST

    user: str | None = Field(default=None, min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=500)


class SilenceMatcher(BaseModel):
    name: str
    op: str = Field(description="=, !=, =~ or !~")
    value: str


class SilenceView(BaseModel):
    """A silence: matching alerts still change state but are not notified."""

    model_config = ConfigDict(extra="allow")

    id: str
    matchers: list[SilenceMatcher]
    matchers_text: list[str]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    state: str = Field(description="active, pending (starts later) or expired")


class SilencesResponse(BaseModel):
    silences: list[SilenceView]
    count: int


class SilenceResponse(BaseModel):
    silence: SilenceView


class SilenceRequest(BaseModel):
    """A new silence: label matchers, how long, and why."""

    model_config = _REQUEST

    matchers: list[str] = Field(min_length=1, max_length=20,
                                examples=[['alertname="high_cpu_usage"', 'bot="demo"']])
    duration_s: float = Field(gt=0, le=366 * 86400, examples=[7200])
    comment: str = Field(default="", max_length=500)
    created_by: str | None = Field(default=None, min_length=1, max_length=100)
    starts_at: float | None = Field(default=None, ge=0, le=1e11,
                                    description="Epoch seconds; default now")



class RateLimitRow(BaseModel):
    exchange: str
    budget: str
    interval: str
    utilization: float | None = Field(description="0..1 of the budget used, when known")
    used: float | None
    orders: float | None
    remaining: float | None = Field(default=None,
                                    description="Left in the interval, where the exchange says")
    retry_after: float | None = Field(description="Seconds, when the exchange asked to wait")


class TradeRow(BaseModel):
    model_config = ConfigDict(extra="allow")

    time: float
    symbol: str
    side: str
    quantity: float | None
    price: float | None
    slippage_bp: float | None = Field(description="Adverse positive, favorable negative")
    outcome: str
    latency_ms: float | None


class SymbolPnl(BaseModel):
    symbol: str
    pnl: float


class TradingView(BaseModel):
    rate_limits: list[RateLimitRow]
    recent_trades: list[TradeRow]
    pnl_by_symbol: list[SymbolPnl]


class RuleView(BaseModel):
    name: str
    severity: str
    condition: str
    for_s: float
    metric: str | None
    op: str | None
    threshold: float | None
    unit: str | None


DashboardResponse.model_rebuild()
