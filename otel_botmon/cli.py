"""The ``botmon`` command: the demo, and a client of a running dashboard's API.

``botmon demo`` runs the simulated exchange, a trading bot, the monitor and the
dashboard in one process. ``botmon status`` and ``botmon alerts list|ack|resolve`` talk
to a running dashboard (``--url``, default ``$BOTMON_URL`` or http://127.0.0.1:8001;
``--token``, default ``$BOTMON_TOKEN``). ``botmon rules check|test|export`` works on
rule files. Exit codes: 0 success, 1 the command failed, 2 bad usage or unreachable API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, TextIO

import httpx

DEFAULT_URL = "http://127.0.0.1:8001"


class CliError(Exception):
    """A failure to report on stderr with an exit code, without a traceback."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="botmon", description="OpenTelemetry monitoring for trading bots.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demo = commands.add_parser(
        "demo", help="run a simulated exchange, a bot, the monitor and the dashboard",
    )
    demo.add_argument("--duration", type=_positive_float, default=None, metavar="S",
                      help="stop after S seconds (default: run until Ctrl+C)")
    demo.add_argument("--port", type=_port, default=8001, metavar="P",
                      help="dashboard port (default 8001; 0 picks a free one)")
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser")
    demo.add_argument("--time-scale", type=_positive_float,
                      default=_env_float("BOTMON_DEMO_TIME_SCALE", 1.0), metavar="F",
                      help="multiply every fault phase and interval by F "
                           "(default 1, or $BOTMON_DEMO_TIME_SCALE)")
    demo.add_argument("--exchange-only", action="store_true",
                      help="serve only the simulated exchange (Binance spot wire format) "
                           "on --port for your own bot; key and secret from "
                           "$BOTMON_DEMO_API_KEY / $BOTMON_DEMO_API_SECRET")
    demo.set_defaults(func=cmd_demo)

    status = commands.add_parser("status", help="show a running dashboard's system status")
    _client_options(status)
    status.set_defaults(func=cmd_status)

    alerts = commands.add_parser("alerts", help="list, acknowledge or resolve alerts")
    actions = alerts.add_subparsers(dest="alerts_command", metavar="{list,ack,resolve}")
    actions.required = True
    listing = actions.add_parser("list", help="active alerts (--all: recent of any state)")
    listing.add_argument("--all", action="store_true", help="include resolved alerts")
    listing.add_argument("--limit", type=int, default=50)
    _client_options(listing)
    listing.set_defaults(func=cmd_alerts_list)
    ack = actions.add_parser("ack", help="acknowledge an alert")
    ack.add_argument("alert_id", metavar="ID")
    ack.add_argument("--user", required=True, metavar="U", help="who acknowledges")
    _client_options(ack)
    ack.set_defaults(func=cmd_alerts_ack)
    resolve = actions.add_parser("resolve", help="resolve an alert")
    resolve.add_argument("alert_id", metavar="ID")
    resolve.add_argument("--user", default=None, metavar="U")
    _client_options(resolve)
    resolve.set_defaults(func=cmd_alerts_resolve)

    try:
        from otel_botmon.alerting.rules_cli import add_rules_commands
    except ImportError:  # the rules tools are optional for the other commands
        pass
    else:
        add_rules_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``botmon``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except CliError as exc:
        print(f"botmon: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    return int(code or 0)


# --- argument types ------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def _env_float(name: str, default: float) -> float:
    try:
        return _positive_float(os.environ[name])
    except (KeyError, argparse.ArgumentTypeError):
        return default


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("BOTMON_URL", DEFAULT_URL),
                        help="dashboard base URL (default $BOTMON_URL or %(default)s)")
    parser.add_argument("--token", default=os.environ.get("BOTMON_TOKEN"),
                        help="dashboard access token (default $BOTMON_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print the raw JSON")
    parser.add_argument("--timeout", type=_positive_float, default=10.0, metavar="S")


# --- demo ----------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, out: TextIO | None = None) -> int:
    if getattr(args, "exchange_only", False):
        return _serve_exchange(args, out or sys.stdout)
    try:
        from otel_botmon.demo.runner import DemoOptions, run_demo
    except ImportError as exc:
        raise CliError(
            f"the demo needs {exc.name!r}: pip install 'otel-botmon[dashboard]'", 2
        ) from exc
    options = DemoOptions(
        duration_s=args.duration, port=args.port, open_browser=not args.no_browser,
        time_scale=args.time_scale,
    )
    try:
        result = asyncio.run(run_demo(options, out or sys.stdout))
    except OSError as exc:
        raise CliError(f"cannot start the demo on port {args.port}: {exc}; "
                       "try --port 0", 2) from exc
    return 0 if result.trades > 0 else 1


def _serve_exchange(args: argparse.Namespace, out: TextIO) -> int:
    from otel_botmon.demo.serve import serve_forever

    key = os.environ.get("BOTMON_DEMO_API_KEY", "demo-api-key")
    secret = os.environ.get("BOTMON_DEMO_API_SECRET", "demo-api-secret")
    try:
        asyncio.run(asyncio.wait_for(serve_forever(key, secret, args.port, out),
                                     timeout=args.duration))
    except (TimeoutError, asyncio.TimeoutError, KeyboardInterrupt):
        pass
    except OSError as exc:
        raise CliError(f"cannot serve the exchange on port {args.port}: {exc}", 2) from exc
    return 0


# --- dashboard client ----------------------------------------------------------------------


def _request(args: argparse.Namespace, method: str, path: str,
             body: dict[str, Any] | None = None) -> Any:
    url = args.url.rstrip("/") + path
    headers = {"Accept": "application/json"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    try:
        response = httpx.request(method, url, json=body, headers=headers, timeout=args.timeout)
    except httpx.HTTPError as exc:
        raise CliError(
            f"cannot reach the dashboard at {args.url} ({type(exc).__name__}); is "
            "`botmon demo` or your bot's MonitoringDashboard running? (--url)", 2,
        ) from exc
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code == 401:
        raise CliError("the dashboard needs an access token: pass --token or set BOTMON_TOKEN", 2)
    if response.status_code >= 400:
        detail = payload.get("detail") if isinstance(payload, dict) else response.text[:200]
        raise CliError(f"{method} {path} failed with HTTP {response.status_code}: {detail}")
    return payload


def cmd_status(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    status = _request(args, "GET", "/api/status")
    if args.json:
        out.write(json.dumps(status, indent=2) + "\n")
        return 0
    sev = status.get("alerts_by_severity", {})
    out.write(f"overall health: {status['overall_health']}\n")
    out.write(f"uptime:         {_duration(status.get('uptime_seconds', 0))}\n")
    out.write(f"active alerts:  {status['active_alerts']} ("
              + ", ".join(f"{k} {v}" for k, v in sev.items()) + ")\n")
    out.write("components:\n")
    for name, health in sorted(status.get("components", {}).items()):
        out.write(f"  {name:<24} {health}\n")
    return 0


def cmd_alerts_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    params = f"?state={'all' if args.all else 'active'}&limit={max(1, min(args.limit, 1000))}"
    payload = _request(args, "GET", "/api/alerts" + params)
    alerts = payload.get("alerts", [])
    if args.json:
        out.write(json.dumps(alerts, indent=2) + "\n")
        return 0
    if not alerts:
        out.write("no alerts\n")
        return 0
    out.write(f"{'ID':<32}  {'SEVERITY':<9} {'STATE':<9} {'ACK':<12} {'SINCE':<20} TITLE\n")
    for alert in alerts:
        ack = alert.get("acknowledged_by") or ("yes" if alert.get("acknowledged") else "-")
        out.write(f"{alert['id']:<32}  {alert['severity']:<9} {alert['state']:<9} "
                  f"{_clip(ack, 12):<12} {_when(alert.get('started_at')):<20} "
                  f"{_clip(alert['title'], 80)}\n")
    return 0


def cmd_alerts_ack(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    alert = _request(args, "POST", f"/api/alerts/{_quote(args.alert_id)}/acknowledge",
                     {"user": args.user})["alert"]
    out.write(f"acknowledged {alert['id']} ({_clip(alert['title'], 80)}) as {args.user}\n")
    return 0


def cmd_alerts_resolve(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    body = {"user": args.user} if args.user else None
    alert = _request(args, "POST", f"/api/alerts/{_quote(args.alert_id)}/resolve", body)["alert"]
    out.write(f"resolved {alert['id']} ({_clip(alert['title'], 80)})\n")
    return 0


def _quote(alert_id: str) -> str:
    from urllib.parse import quote

    return quote(alert_id, safe="")


def _clip(text: str, width: int) -> str:
    # Terminal output: no control characters from alert text (escape sequences).
    clean = "".join(ch if ch.isprintable() else " " for ch in str(text))
    return clean if len(clean) <= width else clean[: width - 1] + "…"


def _when(stamp: float | None) -> str:
    if not stamp:
        return "-"
    return datetime.fromtimestamp(stamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
