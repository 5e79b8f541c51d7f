"""The ``botmon`` command: the demo, and a client of a running dashboard's API.

``botmon demo`` runs the simulated exchange, a trading bot, the monitor and the
dashboard in one process. ``botmon status``, ``botmon alerts list|ack|resolve`` and
``botmon silence add|list|expire`` talk to a running dashboard (``--url``, default
``$BOTMON_URL`` or http://127.0.0.1:8001, scheme optional; ``--token``, default
``$BOTMON_TOKEN``). ``botmon rules check|test|export`` works on rule files.

Exit codes: 0 success, 1 the command failed, 2 bad usage or unreachable API; ``botmon
status`` exits 0/1/2 for healthy/degraded/critical and 3 when the health is unknown or
the dashboard cannot be reached (the Nagios convention, for cron and health checks).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from otel_botmon import _env
from otel_botmon.cli_client import (
    DEFAULT_URL,
    CliError,
    cmd_alerts_ack,
    cmd_alerts_list,
    cmd_alerts_resolve,
    cmd_status,
)

__all__ = ["CliError", "build_parser", "main"]

_RAW = argparse.RawDescriptionHelpFormatter


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join("  " + line for line in lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="botmon", description="OpenTelemetry monitoring for trading bots.",
        formatter_class=_RAW, epilog=_examples(
            "botmon demo                      # simulated exchange + bot + dashboard",
            "botmon status                    # exit 0/1/2/3: healthy/degraded/critical/unknown",
            "botmon alerts list --pending",
            "botmon alerts ack 1a2b3c --note 'restarting the feed'",
            "botmon silence add alertname=high_cpu_usage --duration 2h --comment deploy",
        ),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demo = commands.add_parser(
        "demo", help="run a simulated exchange, a bot, the monitor and the dashboard",
        formatter_class=_RAW, epilog=_examples(
            "botmon demo", "botmon demo --port 0 --duration 120 --no-browser",
            "botmon demo --time-scale 0.2     # faults come five times as fast",
            "botmon demo --exchange-only --port 8002   # just the exchange, for your bot"),
    )
    demo.add_argument("--duration", type=_positive_float, default=None, metavar="S",
                      help="stop after S seconds (default: run until Ctrl+C)")
    demo.add_argument("--port", type=_port, default=8001, metavar="P",
                      help="dashboard port (default 8001; 0 picks a free one)")
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser")
    demo.add_argument("--time-scale", type=_positive_float,
                      default=None, metavar="F",
                      help="multiply every fault phase and interval by F "
                           "(default 1, or $BOTMON_DEMO_TIME_SCALE)")
    demo.add_argument("--exchange-only", action="store_true",
                      help="serve only the simulated exchange (Binance spot and Bybit v5 "
                           "wire formats) on --port for your own bot; key and secret from "
                           "$BOTMON_DEMO_API_KEY / $BOTMON_DEMO_API_SECRET")
    demo.set_defaults(func=cmd_demo)

    status = commands.add_parser(
        "status", help="firing alerts and component health; exit code = health",
        description="Print the overall health, the firing alerts and every component's "
                    "message. Exit code: 0 healthy, 1 degraded, 2 critical, 3 unknown or "
                    "unreachable, so it can serve as a cron check or a container health "
                    "check.",
        formatter_class=_RAW, epilog=_examples(
            "botmon status",
            "botmon status --url bot-host:8001 --token \"$BOTMON_TOKEN\"",
            "botmon status --json | jq .firing",
            "*/5 * * * * botmon status >/dev/null || notify-me   # cron",
            "HEALTHCHECK CMD botmon status --timeout 3 >/dev/null  # Dockerfile"),
    )
    _client_options(status)
    status.set_defaults(func=cmd_status)

    alerts = commands.add_parser(
        "alerts", help="list, acknowledge or resolve alerts", formatter_class=_RAW,
        epilog=_examples("botmon alerts list", "botmon alerts ack 1a2b3c",
                         "botmon alerts resolve 1a2b3c --note 'fixed the feed'"),
    )
    actions = alerts.add_subparsers(dest="alerts_command", metavar="{list,ack,resolve}")
    actions.required = True
    listing = actions.add_parser(
        "list", help="firing alerts (--pending: and pending; --all: recent of any state)",
        formatter_class=_RAW, epilog=_examples(
            "botmon alerts list", "botmon alerts list --pending",
            "botmon alerts list --all --limit 20", "botmon alerts list --json --wide"),
    )
    listing.add_argument("--all", action="store_true",
                         help="recent alerts of any state, resolved included")
    listing.add_argument("--pending", action="store_true",
                         help="also alerts whose condition holds but not yet for long")
    listing.add_argument("--wide", action="store_true", help="full 32-character ids")
    listing.add_argument("--limit", type=_positive_int, default=50, metavar="N",
                         help="at most N alerts (default 50)")
    _client_options(listing)
    listing.set_defaults(func=cmd_alerts_list)
    for name, verb, func in (("ack", "acknowledge", cmd_alerts_ack),
                             ("resolve", "resolve", cmd_alerts_resolve)):
        action = actions.add_parser(
            name, help=f"{verb} an alert (ID: any unique prefix of its id)",
            formatter_class=_RAW, epilog=_examples(
                f"botmon alerts {name} 1a2b3c4d",
                f"botmon alerts {name} 1a2b --user ann --note 'on it'"),
        )
        action.add_argument("alert_id", metavar="ID")
        action.add_argument("--user", default=None, metavar="U",
                            help=f"who does it (default: $USER, here {_user()!r})")
        action.add_argument("--note", default=None, metavar="TEXT", help="why, what next")
        _client_options(action)
        action.set_defaults(func=func)

    from otel_botmon.cli_silence import add_silence_commands

    add_silence_commands(commands, _client_options)

    try:
        from otel_botmon.alerting.rules_cli import add_rules_commands
    except ImportError:  # the rules tools are optional for the other commands
        pass
    else:
        add_rules_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``botmon``; returns the exit code."""
    try:
        # building the parser imports the rule tools (seconds on a loaded machine): a
        # Ctrl-C meanwhile is an interrupt like any other, not a traceback
        args = build_parser().parse_args(argv)
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except CliError as exc:
        print(f"botmon: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `botmon ... | head -1`: the reader has gone; stop quietly, as a tool killed by
        # SIGPIPE would (exit 128 + 13), and keep the exit-time flush from failing again
        _discard_stdout()
        return SIGPIPE_EXIT
    return int(code or 0)


SIGPIPE_EXIT = 141
"""Exit code when stdout was closed by its reader (128 + SIGPIPE, as shells report it)."""


def _discard_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is no file descriptor (tests, embedding)
        pass


# --- argument types ------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def _user() -> str:
    from otel_botmon.cli_client import default_user

    return default_user()


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get(_env.BOTMON_URL, DEFAULT_URL),
                        help="dashboard base URL, scheme optional "
                             "(default $BOTMON_URL or %(default)s)")
    parser.add_argument("--token", default=os.environ.get(_env.BOTMON_TOKEN),
                        help="dashboard access token (default $BOTMON_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print the raw JSON")
    parser.add_argument("--no-color", action="store_true",
                        help="no colours (also: $NO_COLOR; none when not a terminal)")
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
        time_scale=args.time_scale if args.time_scale is not None
        else _env.read_positive_float(_env.BOTMON_DEMO_TIME_SCALE, 1.0),
    )
    from otel_botmon.telemetry import ConfigurationError

    try:
        result = asyncio.run(run_demo(options, out or sys.stdout))
    except ConfigurationError as exc:  # an OTEL_* variable that cannot work
        raise CliError(str(exc), 2) from exc
    except OSError as exc:
        raise CliError(f"cannot start the demo on port {args.port}: {exc}; "
                       "try --port 0", 2) from exc
    return 0 if result.trades > 0 else 1


def _serve_exchange(args: argparse.Namespace, out: TextIO) -> int:
    from otel_botmon.demo.serve import serve_forever

    key = os.environ.get(_env.BOTMON_DEMO_API_KEY, "demo-api-key")
    secret = os.environ.get(_env.BOTMON_DEMO_API_SECRET, "demo-api-secret")
    try:
        asyncio.run(asyncio.wait_for(serve_forever(key, secret, args.port, out),
                                     timeout=args.duration))
    except (TimeoutError, KeyboardInterrupt):
        pass
    except OSError as exc:
        raise CliError(f"cannot serve the exchange on port {args.port}: {exc}", 2) from exc
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
