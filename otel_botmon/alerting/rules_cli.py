"""``botmon rules check|test|export``: the rule-file tools of the command line.

``otel_botmon.cli`` calls :func:`add_rules_commands` with its subparsers; every command
sets ``func`` (``args -> exit code``). Exit codes: 0 success, 1 failed checks or tests,
2 unusable input (unreadable file, bad arguments).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from otel_botmon.alerting.rules import RuleFileError, RuleGroup, load_rule_groups
from otel_botmon.alerting.ruletest import RuleTestError, run_rule_tests

__all__ = ["add_rules_commands", "main"]

_RAW = argparse.RawDescriptionHelpFormatter


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join("  " + line for line in lines)


def add_rules_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``rules`` with ``check``, ``test`` and ``export`` on ``subparsers``."""
    rules = subparsers.add_parser(
        "rules", help="check, test and export alert rule files", formatter_class=_RAW,
        epilog=_examples(
            "botmon rules check rules/bot.yml",
            "botmon rules test rules/bot.test.yml",
            "botmon rules export -o botmon-default-rules.yml",
        ),
    )
    commands = rules.add_subparsers(dest="rules_command", metavar="{check,test,export}")
    commands.required = True

    check = commands.add_parser(
        "check", help="validate YAML rule files", formatter_class=_RAW,
        epilog=_examples(
            "botmon rules check rules/bot.yml             # exit 1 if a rule is invalid",
            "botmon rules check rules/*.yml",
        ),
    )
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(func=cmd_check)

    test = commands.add_parser(
        "test", help="run rule unit tests (promtool 'test rules' format)",
        formatter_class=_RAW, epilog=_examples(
            "botmon rules test rules/bot.test.yml        # exit 1 if a test fails",
            "promtool test rules rules/bot.test.yml      # the same file, the same verdict",
        ),
    )
    test.add_argument("files", nargs="+", metavar="FILE")
    test.set_defaults(func=cmd_test)

    export = commands.add_parser(
        "export", help="write rules as a Prometheus rule file (default: the default rules)",
        formatter_class=_RAW, epilog=_examples(
            "botmon rules export -o botmon-default-rules.yml   # the default rules",
            "botmon rules export rules/bot.yml -o bot-rules.yml",
            "botmon rules export rules/fleet.yml --per-bot ''  # one alert for the fleet",
        ),
    )
    export.add_argument("files", nargs="*", metavar="FILE")
    export.add_argument("--format", choices=["prometheus"], default="prometheus")
    export.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    export.add_argument(
        "--per-bot", metavar="LABELS", default=None,
        help="comma-separated labels every aggregation keeps so each bot gets its own "
             "alert (default: job,instance,bot_name); an empty value exports the "
             "expressions' own grouping, for rules meant for a whole fleet")
    export.set_defaults(func=cmd_export)


def cmd_check(args: argparse.Namespace, out: TextIO | None = None,
              err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    failed = unusable = False
    for path in args.files:
        try:
            groups = load_rule_groups(path)
        except RuleFileError as exc:
            print(f"FAILED: {exc}", file=err)
            failed = True
            unusable = unusable or exc.unreadable
            continue
        count = sum(len(g.rules) + len(g.recordings) for g in groups)
        for group in groups:
            for note in group.notes:
                print(f"note: {note}", file=err)
        print(f"{path}: OK, {count} rule{'s' if count != 1 else ''} in {len(groups)} "
              f"group{'s' if len(groups) != 1 else ''}", file=out)
    return 2 if unusable else 1 if failed else 0


def cmd_test(args: argparse.Namespace, out: TextIO | None = None,
             err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    failed = unusable = False
    # a rule that cannot be evaluated is a test failure here, not a bot's internal error
    bot_logger = logging.getLogger("otel_botmon")
    level = bot_logger.level
    bot_logger.setLevel(logging.CRITICAL)
    try:
        for path in args.files:
            try:
                report = run_rule_tests(path)
            except (RuleTestError, RuleFileError) as exc:
                print(f"Unit Testing:  {path}\n  FAILED: {exc}", file=err)
                failed = True
                unusable = unusable or (isinstance(exc, RuleTestError) and exc.unreadable)
                continue
            print(report.render(), file=out)
            failed = failed or not report.ok
    finally:
        bot_logger.setLevel(level)
    return 2 if unusable else 1 if failed else 0


def cmd_export(args: argparse.Namespace, out: TextIO | None = None,
               err: TextIO | None = None) -> int:
    from otel_botmon.alerting.promexport import BOT_LABELS, export_prometheus

    out, err = out or sys.stdout, err or sys.stderr
    sources: list[RuleGroup] = []
    if args.files:
        for path in args.files:
            try:
                sources += load_rule_groups(path)
            except RuleFileError as exc:
                print(f"FAILED: {exc}", file=err)
                return 2
    else:
        from otel_botmon.alerting.default_rules import default_rules_for
        from otel_botmon.monitor_config import MonitoringConfig  # a plain settings class

        # every rule SystemMonitor runs with the default configuration
        sources.append(RuleGroup("botmon_default", default_rules_for(MonitoringConfig())))
    per_bot = BOT_LABELS if args.per_bot is None else tuple(
        label.strip() for label in args.per_bot.split(",") if label.strip())
    result = export_prometheus(sources, per_bot=per_bot)
    text = result.to_yaml()
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            print(f"FAILED: cannot write {args.output}: {exc}", file=err)
            return 2
    else:
        out.write(text)
    for name, why in result.skipped:
        print(f"not exported: {name}: {why}", file=err)
    for name, why in result.notes:
        print(f"note: {name}: {why}", file=err)
    print(f"exported {len(result.exported)} rule(s), skipped {len(result.skipped)}", file=err)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``rules ...`` on its own (``python -m otel_botmon.alerting.rules_cli rules check F``)."""
    parser = argparse.ArgumentParser(prog="botmon")
    add_rules_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
