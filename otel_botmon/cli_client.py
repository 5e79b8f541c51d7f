"""``botmon status``, ``botmon alerts ...`` and ``botmon silence ...``: clients of a running
dashboard's REST API (see :mod:`otel_botmon.cli` for the parser)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import quote

import httpx

DEFAULT_URL = "http://127.0.0.1:8001"
SHORT_ID = 8
"""Characters of an alert or silence id shown in listings; any unique prefix is accepted."""

STATUS_EXIT = {"healthy": 0, "degraded": 1, "critical": 2}
"""``botmon status`` exit code per overall health; anything else (unknown, unreachable) is 3."""
STATUS_UNKNOWN = 3

_SEVERITY_ORDER = {"emergency": 0, "critical": 1, "warning": 2, "info": 3}
_COLOURS = {"emergency": "1;35", "critical": "1;31", "warning": "33", "info": "36",
            "pending": "2", "resolved": "2", "healthy": "32", "degraded": "33"}


class CliError(Exception):
    """A failure to report on stderr with an exit code, without a traceback."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# --- plumbing ------------------------------------------------------------------------------


def normalize_url(url: str) -> str:
    """``localhost:8001`` -> ``http://localhost:8001``; no trailing slash."""
    url = url.strip()
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url):
        url = "http://" + url
    return url.rstrip("/")


def _dashboard_url(given: str, code: int) -> str:
    """The normalized ``--url``; a CliError naming it when it is no http(s) URL with a
    host (``--url ::::`` was an httpx traceback)."""
    url = normalize_url(given)
    try:
        parsed = httpx.URL(url)
        ok = parsed.scheme in ("http", "https") and bool(parsed.host)
    except (httpx.InvalidURL, ValueError):
        ok = False
    if not ok:
        raise CliError(
            f"--url (or $BOTMON_URL) {clip(given, 80)!r} is not a dashboard URL; expected "
            "http(s)://host:port or host:port, e.g. 127.0.0.1:8001", code,
        )
    return url


def default_user() -> str:
    return os.environ.get("USER") or os.environ.get("USERNAME") or "cli"


def request(args: argparse.Namespace, method: str, path: str,
            body: dict[str, Any] | None = None, *, unreachable_code: int = 2) -> Any:
    base = _dashboard_url(args.url, unreachable_code)
    url = base + path
    headers = {"Accept": "application/json"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    try:
        response = httpx.request(method, url, json=body, headers=headers, timeout=args.timeout)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise CliError(
            f"cannot reach the dashboard at {normalize_url(args.url)} ({type(exc).__name__}); "
            "is `botmon demo` or your bot's MonitoringDashboard running? (--url)",
            unreachable_code,
        ) from exc
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code == 401:
        raise CliError("the dashboard needs an access token: pass --token or set BOTMON_TOKEN",
                       unreachable_code)
    if response.status_code >= 400:
        detail = payload.get("detail") if isinstance(payload, dict) else response.text[:200]
        raise CliError(f"{method} {path} failed with HTTP {response.status_code}: {detail}")
    return payload


class Painter:
    """ANSI colours on a terminal (never with ``NO_COLOR`` set or ``--no-color``)."""

    def __init__(self, out: TextIO, enabled: bool | None = None) -> None:
        if enabled is None:
            isatty = getattr(out, "isatty", None)
            # no-color.org: NO_COLOR counts when present and not empty
            enabled = bool(isatty and isatty()) and not os.environ.get("NO_COLOR")
        self.enabled = enabled

    def __call__(self, text: str, key: str) -> str:
        code = _COLOURS.get(key)
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled and code else text


def clip(text: Any, width: int) -> str:
    # Terminal output: no control characters from alert text (escape sequences).
    clean = "".join(ch if ch.isprintable() else " " for ch in str(text))
    return clean if len(clean) <= width else clean[: width - 1] + "…"


def when(stamp: float | None) -> str:
    if not stamp:
        return "-"
    return datetime.fromtimestamp(stamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def duration(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def age(stamp: float | None, now: float | None = None) -> str:
    """``3m12s``-style age of an epoch stamp."""
    if not stamp:
        return "-"
    seconds = int(max(0.0, (time.time() if now is None else now) - stamp))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``2h``, ``1h30m``, ``1d`` -> seconds (argparse type)."""
    compact = text.strip().lower()
    parts = _DURATION_PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise argparse.ArgumentTypeError(f"not a duration like 90s, 15m, 2h or 1h30m: {text!r}")
    seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"duration must be positive, got {text!r}")
    return seconds


# --- status --------------------------------------------------------------------------------


def headline(status: dict[str, Any]) -> str:
    """``CRITICAL · Trading engine stalled (+2)``: the worst firing alert and how many more."""
    overall = str(status.get("overall_health", "unknown"))
    firing = status.get("firing") or []
    if not firing:
        return overall.upper()
    more = f" (+{len(firing) - 1})" if len(firing) > 1 else ""
    return f"{overall.upper()} · {clip(firing[0].get('title', ''), 80)}{more}"


def cmd_status(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    status = request(args, "GET", "/api/status", unreachable_code=STATUS_UNKNOWN)
    code = STATUS_EXIT.get(str(status.get("overall_health")), STATUS_UNKNOWN)
    if args.json:  # /api/status as it is (it lists the firing alerts too)
        out.write(json.dumps(status, indent=2) + "\n")
        return code
    try:
        health = request(args, "GET", "/api/health", unreachable_code=STATUS_UNKNOWN)
    except CliError:
        health = {"components": {}}
    paint = Painter(out, False if args.no_color else None)
    overall = str(status.get("overall_health", "unknown"))
    sev = status.get("alerts_by_severity", {})
    now = float(status.get("timestamp") or time.time())
    out.write(paint(headline(status), overall) + "\n")
    out.write(f"overall health: {overall}\n")
    out.write(f"uptime:         {duration(status.get('uptime_seconds', 0))}"
              + ("" if status.get("running", True) else " (stopped)") + "\n")
    out.write(f"firing alerts:  {status.get('active_alerts', 0)} ("
              + ", ".join(f"{k} {v}" for k, v in sev.items()) + ")"
              + f"; pending {status.get('pending_alerts', 0)}\n")
    for alert in status.get("firing") or []:
        ack = f"  ACK by {clip(alert['acknowledged_by'], 20)}" if alert.get(
            "acknowledged_by") else ""
        severity = str(alert.get("severity", ""))
        out.write(f"  {paint(f'{severity.upper():<9}', severity)} "
                  f"for {age(alert.get('fired_at'), now):<8} {str(alert['id'])[:SHORT_ID]}  "
                  f"{clip(alert.get('title', ''), 70)}{ack}\n")
    components = (health or {}).get("components") or {}
    out.write("components:\n")
    for name, result in sorted(status.get("components", {}).items()):
        message = (components.get(name) or {}).get("message", "")
        out.write(f"  {clip(name, 24):<24} {paint(f'{result:<9}', str(result))} "
                  f"{clip(message, 80)}\n")
    write_kpis(args, out)
    return code


def write_kpis(args: argparse.Namespace, out: TextIO) -> None:
    """The KPIs as ``/api/performance`` gives them: the alert rules' definitions, each
    with its unit and window (nothing when the server does not answer)."""
    try:
        performance = request(args, "GET", "/api/performance?history=1",
                              unreachable_code=STATUS_UNKNOWN)
    except CliError:
        return
    table = performance.get("kpis") or {}
    current = performance.get("current") or {}
    if not table:
        return
    out.write("kpis (the alert rules' definitions):\n")
    for name, kpi in table.items():
        value = current.get(name)
        shown = "-" if value is None else f"{value:.6g} {kpi.get('unit', '')}".rstrip()
        out.write(f"  {clip(name, 24):<24} {shown:<22} {kpi.get('window', '')}\n")


# --- alerts --------------------------------------------------------------------------------


def cmd_alerts_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    limit = max(1, min(args.limit, 1000))
    params = f"?state={'all' if args.all else 'active'}&limit={limit}"
    alerts = request(args, "GET", "/api/alerts" + params).get("alerts", [])
    if not args.all and not args.pending:
        alerts = [a for a in alerts if a.get("state") != "pending"]
    if args.json:
        out.write(json.dumps(alerts, indent=2) + "\n")
        return 0
    if not alerts:
        out.write("no alerts\n")
        return 0
    paint = Painter(out, False if args.no_color else None)
    now = time.time()
    id_width = 32 if args.wide else SHORT_ID
    out.write(f"{'ID':<{id_width}}  {'SEVERITY':<9} {'STATE':<9} {'AGE':<8} {'ACK':<12} "
              f"{'SINCE (UTC)':<20} TITLE\n")
    for alert in alerts:
        ack = alert.get("acknowledged_by") or ("yes" if alert.get("acknowledged") else "-")
        state = str(alert.get("state", ""))
        since = alert.get("fired_at") or alert.get("started_at")
        end = alert.get("resolved_at") or now
        severity = str(alert.get("severity", ""))
        row = (f"{str(alert['id'])[:id_width]:<{id_width}}  "
               f"{paint(f'{severity:<9}', severity)} {paint(f'{state:<9}', state)} "
               f"{age(since, end):<8} {clip(ack, 12):<12} {when(since):<20} "
               f"{clip(alert.get('title', ''), 80)}")
        out.write(row + "\n")
    return 0


def resolve_id(args: argparse.Namespace, given: str) -> str:
    """The full alert id for ``given`` (a full id or any unique prefix)."""
    given = given.strip().lower()
    if re.fullmatch(r"[0-9a-f]{32}", given) or not given:
        return given
    alerts = request(args, "GET", "/api/alerts?state=all&limit=1000").get("alerts", [])
    active = request(args, "GET", "/api/alerts?state=active&limit=1000").get("alerts", [])
    ids = {str(a["id"]) for a in alerts + active}
    matches = sorted(i for i in ids if i.startswith(given))
    if not matches:
        return given  # the server answers 404 with the id in the message
    if len(matches) > 1:
        shown = ", ".join(m[: max(SHORT_ID, len(given) + 2)] for m in matches[:5])
        raise CliError(f"alert id prefix {given!r} is ambiguous: {shown}; type more of it")
    return matches[0]


def _action_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"user": args.user or default_user()}
    if args.note:
        body["note"] = args.note
    return body


def cmd_alerts_ack(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    alert_id = resolve_id(args, args.alert_id)
    body = _action_body(args)
    alert = request(args, "POST", f"/api/alerts/{quote(alert_id, safe='')}/acknowledge",
                    body)["alert"]
    out.write(f"acknowledged {alert['id'][:SHORT_ID]} ({clip(alert['title'], 80)}) as "
              f"{clip(alert.get('acknowledged_by') or body['user'], 40)}\n")
    return 0


def cmd_alerts_resolve(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    alert_id = resolve_id(args, args.alert_id)
    alert = request(args, "POST", f"/api/alerts/{quote(alert_id, safe='')}/resolve",
                    _action_body(args))["alert"]
    out.write(f"resolved {alert['id'][:SHORT_ID]} ({clip(alert['title'], 80)})\n")
    return 0
