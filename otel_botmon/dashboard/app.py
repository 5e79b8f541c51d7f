"""The dashboard's ASGI application: the guide's REST API, a WebSocket and the web page.

``create_app(system_monitor, access_token=None)`` returns a FastAPI app. When
``access_token`` is set, every ``/api`` endpoint and the WebSocket need it
(``Authorization: Bearer <token>``; the WebSocket also takes ``?token=``) and answer
401 without it; the page itself is open. Foreign hosts, foreign origins, non-JSON bodies
and oversized bodies are refused first (``security.DashboardGuard``).
``access_token`` may also be a mapping of names to tokens: an action
taken with a token is then recorded as done by that name unless the body names a user.
Errors are JSON ``{"error": ..., "detail": ...}``.

Acknowledge and resolve take an optional JSON body (``{"user": ..., "note": ...}``); a
body-less POST acknowledges as the token's name, or ``"dashboard"``. An unknown alert id
answers 404 whatever the body.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Query, Request, WebSocket
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from otel_botmon.dashboard.encoding import SafeJSONResponse as JSONResponse
from otel_botmon.dashboard.models import (
    AcknowledgeRequest,
    AlertActionResponse,
    AlertDetailResponse,
    AlertsResponse,
    DashboardResponse,
    ErrorResponse,
    HealthResponse,
    PerformanceResponse,
    ResolveRequest,
    SilenceRequest,
    SilenceResponse,
    SilencesResponse,
    StatusResponse,
)
from otel_botmon.dashboard.push import PushHub
from otel_botmon.dashboard.security import DashboardGuard, GuardPolicy, declare_token_on_reads
from otel_botmon.monitor import SystemMonitor, UnknownAlertError, UnknownSilenceError
from otel_botmon.redaction import redact_text

STATIC_DIR = Path(__file__).parent / "static"

_SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong access token"},
    404: {"model": ErrorResponse, "description": "No alert with this id"},
    422: {"model": ErrorResponse, "description": "Malformed request"},
}


class _Unauthorized(Exception):
    pass


class SecurityHeaders:
    """Adds CSP and friends to every HTTP response (plain ASGI: no per-request task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + _SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _error(status: int, error: str, detail: Any = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


DEFAULT_USER = "dashboard"
"""Who an action is recorded as when neither the body nor the token names anyone."""


def _token_table(access_token: str | Mapping[str, str] | None) -> dict[str, str | None] | None:
    """token -> name (None for an unnamed single token); None when the app is open."""
    if access_token is None:
        return None
    if isinstance(access_token, str):
        if not access_token:
            raise ValueError("access_token must be a non-empty string or None")
        return {access_token: None}
    table: dict[str, str | None] = {}
    for name, token in dict(access_token).items():
        if not isinstance(token, str) or not token or not isinstance(name, str) or not name:
            raise ValueError("access_token mapping must map non-empty names to non-empty tokens")
        table[token] = name
    if not table:
        raise ValueError("access_token mapping must not be empty")
    return table


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": False, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


async def _optional_body(request: Request, model: type[BaseModel]) -> Any:
    """The request's JSON body as ``model``, or None when there is no body."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]
        ) from None


def create_app(
    system_monitor: SystemMonitor,
    *,
    access_token: str | Mapping[str, str] | None = None,
    push_interval_s: float = 2.0,
    alert_limit: int = 20,
    history_limit: int = 120,
    guard: GuardPolicy | None = None,
) -> FastAPI:
    """Build the dashboard app for ``system_monitor``.

    ``push_interval_s`` is the longest a WebSocket client waits for an update; changes
    (alerts, health checks) are pushed sooner. ``alert_limit``/``history_limit`` bound
    the recent alerts and chart points in ``/api/dashboard``. ``guard`` decides which
    hosts, origins and bodies are accepted (loopback, same origin, 64 KiB by default).
    """
    tokens = _token_table(access_token)
    monitor = system_monitor

    def build() -> dict[str, Any]:
        return monitor.get_dashboard_data(alert_limit=alert_limit, history_limit=history_limit)

    hub = PushHub(build, interval_s=push_interval_s)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        hub.start()
        monitor.add_update_listener(hub.mark_changed)
        try:
            yield
        finally:
            monitor.remove_update_listener(hub.mark_changed)
            await hub.stop()

    app = FastAPI(
        title="otel_botmon dashboard",
        description="Status, health, performance and alerts of a trading bot.",
        version="1",
        lifespan=lifespan,
        # FastAPI's /docs and /redoc pull their UI from a CDN: the dashboard stays offline.
        docs_url=None,
        redoc_url=None,
    )
    app.state.push_hub = hub
    app.add_middleware(SecurityHeaders)
    # Added last, so outermost: refuses before anything reads, parses or authenticates.
    policy = dataclasses.replace(guard or GuardPolicy(), access_token=access_token)
    app.add_middleware(DashboardGuard, policy=policy)
    if access_token is not None:
        declare_token_on_reads(app)
    bearer = HTTPBearer(auto_error=False, description="The dashboard's access token")

    def token_ok(given: str | None) -> bool:
        return check_token(given)[0]

    def check_token(given: str | None) -> tuple[bool, str | None]:
        """(allowed, the token's name)."""
        if tokens is None:
            return True, None
        if given is None:
            return False, None
        found: tuple[bool, str | None] = (False, None)
        for token, name in tokens.items():  # compare with every token: no timing hint
            if hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8")):
                found = (True, name)
        return found

    def require_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> str | None:
        allowed, name = check_token(credentials.credentials if credentials else None)
        if not allowed:
            raise _Unauthorized()
        return name

    def who(named: str | None, request: Request) -> str:
        """Who an action is recorded as: the body's name (a secret typed into it is
        scrubbed, as notes and comments are), the token's name, or "dashboard"."""
        return redact_text(named) if named else token_name(request) or DEFAULT_USER

    def token_name(request: Request) -> str | None:
        # read the header directly: a second security dependency would put the token
        # into the schema of an open dashboard
        header = request.headers.get("authorization", "")
        given = header[7:].strip() if header.lower().startswith("bearer ") else None
        return check_token(given)[1]

    _install_error_handlers(app)
    # Only a dashboard with a token declares (and checks) one, so the schema tells the truth.
    guarded = [Depends(require_token)] if tokens is not None else []
    errors = _ERRORS if tokens is not None else {
        k: v for k, v in _ERRORS.items() if k != 401
    }

    @app.get("/api/status", response_model=StatusResponse, tags=["status"])
    async def get_status() -> Any:
        """Overall health, uptime, active alerts by severity and component health."""
        return JSONResponse(monitor.get_system_status().to_dict())

    @app.get("/api/health", response_model=HealthResponse, tags=["health"])
    async def get_health() -> Any:
        """Every component's latest health-check result."""
        return JSONResponse(monitor.get_health_details())

    @app.post(
        "/api/health/check", response_model=HealthResponse, tags=["health"],
        responses={k: v for k, v in errors.items() if k == 401}, dependencies=guarded,
    )
    async def force_health_check() -> Any:
        """Run every health check now and return the fresh results."""
        return JSONResponse(await monitor.force_health_check())

    @app.get("/api/performance", response_model=PerformanceResponse, tags=["performance"])
    async def get_performance(
        history: int = Query(120, ge=1, le=10_000, description="Chart points to return"),
    ) -> Any:
        """Latest trading, API and system figures plus chart history."""
        return JSONResponse(monitor.get_performance_summary(history_limit=history))

    @app.get("/api/alerts", response_model=AlertsResponse, tags=["alerts"])
    async def get_alerts(
        state: str = Query("active", pattern="^(active|all)$",
                           description="active (pending or firing) or all (history)"),
        limit: int = Query(100, ge=1, le=1000),
    ) -> Any:
        """Active alerts (default) or the newest alerts of any state."""
        if state == "active":
            alerts = monitor.get_active_alerts()[:limit]
        else:
            alerts = monitor.get_alert_history(limit=limit)
        return JSONResponse({"alerts": alerts, "count": len(alerts)})

    @app.get(
        "/api/alerts/{alert_id}", response_model=AlertDetailResponse, tags=["alerts"],
        responses={404: _ERRORS[404]},
    )
    async def get_alert(alert_id: str) -> Any:
        """One alert with its event log, notification attempts included."""
        alert = monitor.get_alert(alert_id, with_events=True)
        if alert is None:
            raise UnknownAlertError(alert_id)
        events = alert.pop("events", [])
        return JSONResponse({"alert": alert, "events": events})

    @app.post(
        "/api/alerts/{alert_id}/acknowledge", response_model=AlertActionResponse,
        tags=["alerts"], responses=errors, dependencies=guarded,
        openapi_extra=_body_schema(AcknowledgeRequest),
    )
    async def acknowledge_alert(
        alert_id: str, request: Request,
    ) -> Any:
        """Acknowledge an alert (stops its escalation). The body is optional: without a
        ``user`` the acknowledgement is recorded as the token's name or "dashboard"."""
        monitor.require_actionable(alert_id)  # 404 first, whatever the body
        body = await _optional_body(request, AcknowledgeRequest)
        user = who(body.user if body is not None else None, request)
        note = body.note if body is not None else None
        alert = await monitor.acknowledge_alert(alert_id, user, note=note)
        hub.mark_changed()
        return JSONResponse({"alert": alert})

    @app.post(
        "/api/alerts/{alert_id}/resolve", response_model=AlertActionResponse,
        tags=["alerts"], responses=errors, dependencies=guarded,
        openapi_extra=_body_schema(ResolveRequest),
    )
    async def resolve_alert(
        alert_id: str, request: Request,
    ) -> Any:
        """Resolve an alert by hand (the body is optional, as for acknowledge)."""
        monitor.require_actionable(alert_id)
        body = await _optional_body(request, ResolveRequest)
        user = who(body.user if body is not None else None, request)
        note = body.note if body is not None else None
        alert = await monitor.resolve_alert(alert_id, user, note=note)
        hub.mark_changed()
        return JSONResponse({"alert": alert})

    @app.get("/api/silences", response_model=SilencesResponse, tags=["silences"])
    async def get_silences() -> Any:
        """Active and scheduled silences, soonest ending first."""
        silences = monitor.get_silences()
        return JSONResponse({"silences": silences, "count": len(silences)})

    @app.post(
        "/api/silences", response_model=SilenceResponse, status_code=201, tags=["silences"],
        responses={k: v for k, v in errors.items() if k != 404}, dependencies=guarded,
    )
    async def create_silence(body: SilenceRequest, request: Request) -> Any:
        """Silence the notifications of alerts matching every matcher for a while."""
        try:
            silence = await monitor.add_silence(
                body.matchers, body.duration_s, comment=body.comment,
                created_by=who(body.created_by, request),
                starts_at=body.starts_at,
            )
        except ValueError as exc:
            return _error(422, "invalid_request", str(exc))
        hub.mark_changed()
        return JSONResponse({"silence": silence}, status_code=201)

    @app.post(
        "/api/silences/{silence_id}/expire", response_model=SilenceResponse,
        tags=["silences"], responses={
            **{k: v for k, v in errors.items() if k != 422},
            404: {"model": ErrorResponse, "description": "No silence with this id"},
        }, dependencies=guarded,
    )
    async def expire_silence(silence_id: str) -> Any:
        """End a silence now."""
        silence = await monitor.expire_silence(silence_id)
        hub.mark_changed()
        return JSONResponse({"silence": silence})

    @app.get("/api/dashboard", response_model=DashboardResponse, tags=["dashboard"])
    async def get_dashboard() -> Any:
        """Everything the page shows, in one response (at most a second old)."""
        return Response(hub.snapshot_json(), media_type="application/json")

    @app.websocket("/ws")
    async def updates(websocket: WebSocket) -> None:
        """Pushes ``{"type": "dashboard", "data": <GET /api/dashboard>}`` on changes."""
        given = websocket.query_params.get("token")
        header = websocket.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            given = header[7:].strip()
        if not token_ok(given):
            await _deny(websocket)
            return
        await websocket.accept()
        await hub.serve(websocket)

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


async def _deny(websocket: WebSocket) -> None:
    # An HTTP 401 before the upgrade where the server supports it; a policy close otherwise.
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            _error(401, "unauthorized", "missing or wrong access token")
        )
    else:
        await websocket.close(code=1008)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(_Unauthorized)
    async def unauthorized(_: Request, __: Exception) -> Response:
        response = _error(401, "unauthorized", "missing or wrong access token")
        response.headers["www-authenticate"] = "Bearer"
        return response

    @app.exception_handler(UnknownAlertError)
    async def unknown_alert(_: Request, exc: Exception) -> Response:
        return _error(404, "not_found", redact_text(str(exc)))  # it quotes the URL's id

    @app.exception_handler(UnknownSilenceError)
    async def unknown_silence(_: Request, exc: Exception) -> Response:
        return _error(404, "not_found", redact_text(str(exc)))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return _error(422, "invalid_request", jsonable_encoder(errors))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:  # a body that is not even text: malformed like any other
            return _error(422, "invalid_request", exc.detail)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = _error(exc.status_code, code, exc.detail)
        response.headers.update(exc.headers or {})  # e.g. Allow on 405
        return response
