"""``botmon silence add|list|expire``: silences on a running dashboard."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO
from urllib.parse import quote

from otel_botmon.cli_client import (
    SHORT_ID,
    CliError,
    age,
    clip,
    default_user,
    parse_duration,
    request,
    when,
)


def add_silence_commands(
    commands: Any, client_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    silence = commands.add_parser(
        "silence", help="mute notifications of matching alerts for a while",
        formatter_class=raw, epilog="examples:\n"
        "  botmon silence add alertname=high_cpu_usage --duration 2h --comment 'deploy'\n"
        "  botmon silence list\n  botmon silence expire 9f8e7d",
    )
    actions = silence.add_subparsers(dest="silence_command", metavar="{add,list,expire}")
    actions.required = True
    add = actions.add_parser(
        "add", help="silence alerts whose labels match every MATCHER",
        description="Alerts that match keep changing state and show on the dashboard; only "
                    "their notifications are held back until the silence ends.",
        formatter_class=raw, epilog="examples:\n"
        "  botmon silence add alertname=high_cpu_usage --duration 30m\n"
        "  botmon silence add 'severity=~\"warning|info\"' bot=demo --duration 1h30m "
        "--comment 'exchange maintenance'",
    )
    add.add_argument("matchers", nargs="+", metavar="MATCHER",
                     help='label matcher: name=value, name!=value, name=~"regex", name!~"regex"')
    add.add_argument("--duration", type=parse_duration, required=True, metavar="D",
                     help="how long: 90s, 15m, 2h, 1h30m, 1d")
    add.add_argument("--comment", default="", metavar="TEXT", help="why")
    add.add_argument("--user", default=None, metavar="U",
                     help="who creates it (default: $USER)")
    client_options(add)
    add.set_defaults(func=cmd_silence_add)
    listing = actions.add_parser(
        "list", help="active and scheduled silences", formatter_class=raw,
        epilog="examples:\n  botmon silence list\n  botmon silence list --json",
    )
    client_options(listing)
    listing.set_defaults(func=cmd_silence_list)
    expire = actions.add_parser(
        "expire", help="end a silence now (ID: any unique prefix)", formatter_class=raw,
        epilog="examples:\n  botmon silence expire 9f8e7d6c",
    )
    expire.add_argument("silence_id", metavar="ID")
    client_options(expire)
    expire.set_defaults(func=cmd_silence_expire)


def _line(silence: dict[str, Any], now: float) -> str:
    left = age(now, silence["ends_at"]) if silence.get("state") != "expired" else "-"
    return (f"{silence['id'][:SHORT_ID]:<{SHORT_ID}}  {silence.get('state', ''):<8} "
            f"{left:<8} {when(silence.get('ends_at')):<20} "
            f"{clip(silence.get('created_by', ''), 12):<12} "
            f"{clip(', '.join(silence.get('matchers_text', [])), 60)}"
            + (f"  # {clip(silence['comment'], 60)}" if silence.get("comment") else ""))


_HEADER = f"{'ID':<{SHORT_ID}}  {'STATE':<8} {'LEFT':<8} {'ENDS (UTC)':<20} {'BY':<12} MATCHERS"


def cmd_silence_add(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    body = {"matchers": list(args.matchers), "duration_s": args.duration,
            "comment": args.comment, "created_by": args.user or default_user()}
    silence = request(args, "POST", "/api/silences", body)["silence"]
    if args.json:
        out.write(json.dumps(silence, indent=2) + "\n")
        return 0
    out.write(f"silenced until {when(silence['ends_at'])}: "
              f"{clip(', '.join(silence.get('matchers_text', [])), 100)} "
              f"(id {silence['id'][:SHORT_ID]})\n")
    return 0


def cmd_silence_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    silences = request(args, "GET", "/api/silences").get("silences", [])
    if args.json:
        out.write(json.dumps(silences, indent=2) + "\n")
        return 0
    if not silences:
        out.write("no silences\n")
        return 0
    now = time.time()
    out.write(_HEADER + "\n")
    for silence in silences:
        out.write(_line(silence, now) + "\n")
    return 0


def cmd_silence_expire(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    given = args.silence_id.strip().lower()
    silences = request(args, "GET", "/api/silences").get("silences", [])
    matches = [s["id"] for s in silences if str(s["id"]).startswith(given)]
    if len(matches) > 1:
        raise CliError(f"silence id prefix {given!r} is ambiguous; type more of it")
    silence_id = matches[0] if matches else given
    silence = request(args, "POST", f"/api/silences/{quote(silence_id, safe='')}/expire")
    out.write(f"expired silence {silence['silence']['id'][:SHORT_ID]}\n")
    return 0
