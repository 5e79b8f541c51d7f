"""YAML rule files: Prometheus-style rule groups of botmon alert rules.

```yaml
groups:
  - name: trading
    interval: 10s                 # optional: how often the group is evaluated
    rules:
      - alert: SlowTrades         # or `name:`
        expr: p95(botmon.trade.duration[5m]) > 2s    # or `condition:`
        for: 1m                   # pending duration (default 0)
        keep_firing_for: 2m       # default 0
        severity: warning         # info | warning | critical | emergency
        type: trading             # system | performance | trading | api | database | ...
        description: Trades are slow
        cooldown: 10m             # or cooldown_minutes: 10   (default 5 min)
        escalation: 30m           # or escalation_minutes: 30 (default: none)
        channels: [slack, email]
        escalation_channels: [pagerduty]
        recovery_threshold: 1.5   # hysteresis: resolve only below (for >) / above (for <)
        labels: {team: quant}
        annotations: {summary: "p95 trade latency {value:.2f} s"}
        enabled: true
```

Loading is all-or-nothing: the first problem raises :class:`RuleFileError` naming the
file, line, column and field, and nothing of the file is returned. Durations are
Prometheus-style strings (``90s``, ``1h30m``) or numbers of seconds.

As in Prometheus, several rules of a file may share an alert name (a warning and a
critical rule of one measure, as the node and kubernetes mixins write them), and an
alert's ``alertname`` label is always its rule's ``alert:`` name (a rule's own
``labels: {alertname: ...}`` does not rename it). A rule's name in botmon must be unique
(alert state, silences and the dashboard key on it): the second rule named ``X`` is named
``X #2`` (the third ``X #3``, ...), its alerts still ``alertname="X"``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, TypeVar

import yaml

from otel_botmon.alerting.model import (
    ALERTNAME_LABEL,
    AlertRule,
    AlertSeverity,
    AlertType,
    NotificationChannel,
)
from otel_botmon.alerting.recording import METRIC_NAME, RecordingRule
from otel_botmon.alerting.yamlnodes import (
    FileTooLargeError,
    check_size,
    compose,
    did_you_mean,
    read_text,
    scalar_position,
)
from otel_botmon.query import RuleSyntaxError, compile_condition
from otel_botmon.query.syntax import DURATION_UNITS, promql_differences

__all__ = [
    "RuleFileError", "RuleGroup", "load_rule_file", "load_rule_groups", "parse_rules",
    "unique_rule_names",
]

_GROUP_KEYS = frozenset({"name", "interval", "rules"})
_RECORD_KEYS = frozenset({"record", "expr", "labels"})
_RULE_KEYS = frozenset({
    "alert", "name", "expr", "condition", "for", "keep_firing_for", "severity", "type",
    "description", "cooldown", "cooldown_minutes", "escalation", "escalation_minutes",
    "channels", "escalation_channels", "recovery_threshold", "labels", "annotations",
    "enabled",
})
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")

T = TypeVar("T")


class RuleFileError(ValueError):
    """A rule file that cannot be loaded; ``str()`` reads ``file:line:column: field: why``.

    ``unreadable`` is True when the file itself could not be read (missing, a directory,
    not UTF-8 ...), as opposed to a problem in its content.
    """

    unreadable = False

    def __init__(
        self, filename: str, line: int | None, column: int | None, field: str, message: str
    ) -> None:
        self.filename = filename
        self.line = line  # 1-based
        self.column = column  # 1-based
        self.field = field
        self.message = message
        where = filename
        if line is not None:
            where += f":{line}" + (f":{column}" if column is not None else "")
        super().__init__(f"{where}: {field + ': ' if field else ''}{message}")


@dataclass
class RuleGroup:
    """One ``groups[]`` entry: a name, an optional evaluation interval, its alert rules
    and its recording rules (``record:``), each in file order."""

    name: str
    rules: list[AlertRule] = field(default_factory=list)
    interval_s: float | None = None
    recordings: list[RecordingRule] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """``file:line:column: field: note`` for every expression that PromQL would read
    differently (botmon's matching of a labelless side; ``botmon rules check`` shows
    them)."""


def load_rule_file(path: str | os.PathLike[str]) -> list[AlertRule]:
    """Every rule of the YAML rule file at ``path`` (all groups, in file order).

    Raises :class:`RuleFileError` for an unreadable file, a file larger than
    ``yamlnodes.MAX_FILE_BYTES`` (4 MiB; checked before parsing), malformed YAML, an
    unknown or invalid field or a condition that does not compile. Rules sharing an
    alert name get distinct names (see the module docstring).
    """
    return [rule for group in load_rule_groups(path) for rule in group.rules]


def load_rule_groups(path: str | os.PathLike[str]) -> list[RuleGroup]:
    """The groups of the YAML rule file at ``path``; see :func:`load_rule_file`."""
    filename = os.fspath(path)
    try:
        text = read_text(filename)
    except FileTooLargeError as exc:
        raise RuleFileError(filename, None, None, "", exc.reason) from None
    except (OSError, UnicodeDecodeError) as exc:
        error = RuleFileError(filename, None, None, "", f"cannot read file: {exc}")
        error.unreadable = True
        raise error from None
    return parse_rules(text, filename)


def parse_rules(text: str, filename: str = "<string>") -> list[RuleGroup]:
    """The groups of rule-file ``text``; errors name ``filename``."""
    try:
        check_size(text, filename)
    except FileTooLargeError as exc:
        raise RuleFileError(filename, None, None, "", exc.reason) from None
    return _Loader(filename).load(text)


def _unique(rule: AlertRule, seen: dict[str, int], alert: str) -> AlertRule:
    """``rule`` with a name no earlier rule has (``X #2`` for the second rule with alert
    name ``alert`` = ``X``) and, as Prometheus labels its alerts, ``alertname`` = its
    alert name whenever that is not its botmon name or its labels named another.
    ``seen``: each name taken so far -> the highest number given to an alert name."""
    name = rule.name
    if name in seen:
        count = seen.get(alert, 1)
        while name in seen:
            count += 1
            name = f"{alert} #{count}"
        seen[alert] = count
    seen.setdefault(name, 1)
    if name == rule.name and (rule.labels.get(ALERTNAME_LABEL) or name) == alert:
        return rule
    return replace(rule, name=name, labels={**rule.labels, ALERTNAME_LABEL: alert})


def unique_rule_names(rules: Iterable[AlertRule]) -> list[AlertRule]:
    """The rules of several files as one set (promtool's ``rule_files``): a rule whose
    name an earlier file took is named as a repeated name within a file is (``X #2``),
    its alerts keeping their ``alertname``."""
    seen: dict[str, int] = {}
    return [_unique(rule, seen, rule.labels.get(ALERTNAME_LABEL) or rule.name)
            for rule in rules]


class _Loader:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.constructor = yaml.constructor.SafeConstructor()
        self._comparison: str | None = None  # of the condition of the rule being read
        self.notes: list[str] = []
        self.text = ""

    def error(self, node: yaml.Node | None, where: str, message: str) -> RuleFileError:
        if node is None:
            return RuleFileError(self.filename, None, None, where, message)
        mark = node.start_mark
        return RuleFileError(self.filename, mark.line + 1, mark.column + 1, where, message)

    def load(self, text: str) -> list[RuleGroup]:
        self.text = text
        try:
            root = compose(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            column = mark.column + 1 if mark is not None else None
            problem = exc.problem or exc.context or "malformed YAML"
            raise RuleFileError(
                self.filename, line, column, "", f"invalid YAML: {problem}"
            ) from None
        except yaml.YAMLError as exc:
            raise RuleFileError(self.filename, None, None, "", f"invalid YAML: {exc}") from None
        if root is None:
            raise RuleFileError(self.filename, None, None, "", "empty rule file (no 'groups')")
        top = self.mapping(root, "", frozenset({"groups"}))
        if "groups" not in top:
            raise self.error(root, "groups", "missing (a rule file is 'groups: [...]')")
        groups_node = top["groups"][1]
        groups: list[RuleGroup] = []
        names: set[str] = set()
        seen_rules: dict[str, int] = {}  # see _unique
        for i, gnode in enumerate(self.sequence(groups_node, "groups")):
            group = self.group(gnode, f"groups[{i}]", seen_rules)
            if group.name in names:
                raise self.error(gnode, f"groups[{i}].name", f"duplicate group {group.name!r}")
            names.add(group.name)
            groups.append(group)
        return groups

    # --- structure ---------------------------------------------------------------------

    def mapping(
        self, node: yaml.Node, where: str, allowed: frozenset[str]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, where, "expected a mapping (key: value)")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.error(key_node, where, "keys must be plain names")
            key = str(key_node.value)
            if key in out:
                raise self.error(key_node, _join(where, key), "duplicate key")
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.error(key_node, _join(where, key),
                                 f"unknown field ({did_you_mean(key, sorted(allowed))}"
                                 f"known: {known})")
            out[key] = (key_node, value_node)
        return out

    def sequence(self, node: yaml.Node, where: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, where, "expected a list")
        return list(node.value)

    def scalar(self, node: yaml.Node, where: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, where, "expected a single value")
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError) as exc:
            raise self.error(node, where, f"invalid value: {exc}") from None

    def string(self, node: yaml.Node, where: str) -> str:
        value = self.scalar(node, where)
        if not isinstance(value, str) or not value.strip():
            raise self.error(node, where, "expected a non-empty string")
        return value

    def number(self, node: yaml.Node, where: str) -> float:
        value = self.scalar(node, where)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(node, where, "expected a number")
        if not math.isfinite(value):
            raise self.error(node, where, "expected a finite number")
        return float(value)

    def duration(self, node: yaml.Node, where: str) -> float:
        value = self.scalar(node, where)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str) and _DURATION.match(value.strip()):
            seconds = sum(
                float(n) * DURATION_UNITS[u] for n, u in _DURATION_PART.findall(value.strip())
            )
        else:
            raise self.error(node, where, "expected a duration such as 30s, 5m or 1h30m")
        if not math.isfinite(seconds) or seconds < 0:
            raise self.error(node, where, "a duration must be finite and >= 0")
        return seconds

    def enum(
        self, node: yaml.Node, where: str, convert: Callable[[str], T], kind: type[Enum]
    ) -> T:
        value = self.string(node, where)
        try:
            return convert(value.strip().lower())
        except ValueError:
            names = [str(m.value) for m in kind]
            hint = did_you_mean(value.strip().lower(), names)
            raise self.error(
                node, where, f"unknown value {value!r} ({hint}known: {', '.join(names)})",
            ) from None

    def string_map(self, node: yaml.Node, where: str, labels: bool = False) -> dict[str, str]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, where, "expected a mapping")
        out: dict[str, str] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node, where)
            if not isinstance(key, str) or not _LABEL_NAME.match(key):
                raise self.error(key_node, where, f"invalid name {key!r}")
            if labels and key == "__name__":
                raise self.error(key_node, where, "invalid label name '__name__' (as in "
                                 "Prometheus, a rule's labels do not set the metric name)")
            if key in out:
                raise self.error(key_node, _join(where, key), "duplicate key")
            value = self.scalar(value_node, _join(where, key))
            if value is None or isinstance(value, (list, dict)):
                raise self.error(value_node, _join(where, key), "expected a text value")
            out[key] = value if isinstance(value, str) else str(value)
        return out

    def check_templates(self, node: yaml.Node, where: str) -> None:
        """Refuse a template action botmon would not render, at the action itself."""
        from otel_botmon.alerting.templates import unsupported_action

        if not isinstance(node, yaml.MappingNode):  # string_map has refused it already
            return
        for key_node, value_node in node.value:
            action = unsupported_action(str(value_node.value))
            if action is None:
                continue
            start, end = value_node.start_mark.index, value_node.end_mark.index
            at = self.text.find(action, start, end)
            if at < 0:  # not verbatim in the source (escapes): point at the value
                located: yaml.Node | None = value_node
            else:
                line = self.text.count("\n", 0, at)
                column = at - (self.text.rfind("\n", 0, at) + 1)
                mark = yaml.Mark(self.filename, at, line, column, self.text, at)
                located = yaml.ScalarNode("tag:yaml.org,2002:str", action, mark, mark)
            why = ("alert series carry no metric name in botmon" if "__name__" in action
                   else "botmon renders $value, $labels.<name>, humanize*, printf, "
                   "$externalLabels.<name> and $externalURL")
            raise self.error(located, _join(where, str(key_node.value)),
                             f"template action {action} is not supported ({why})")

    # --- groups and rules --------------------------------------------------------------

    def group(self, node: yaml.Node, where: str, seen_rules: dict[str, int]) -> RuleGroup:
        fields = self.mapping(node, where, _GROUP_KEYS)
        if "name" not in fields:
            raise self.error(node, _join(where, "name"), "missing")
        group = RuleGroup(self.string(fields["name"][1], _join(where, "name")))
        first_note = len(self.notes)
        if "interval" in fields:
            interval = self.duration(fields["interval"][1], _join(where, "interval"))
            if interval <= 0:
                raise self.error(fields["interval"][1], _join(where, "interval"), "must be > 0")
            group.interval_s = interval
        if "rules" not in fields:
            raise self.error(node, _join(where, "rules"), "missing")
        for i, rnode in enumerate(self.sequence(fields["rules"][1], _join(where, "rules"))):
            if isinstance(rnode, yaml.MappingNode) and any(
                isinstance(k, yaml.ScalarNode) and k.value == "record" for k, _ in rnode.value
            ):
                group.recordings.append(self.recording(rnode, f"{where}.rules[{i}]"))
                continue
            rule = self.rule(rnode, f"{where}.rules[{i}]")
            group.rules.append(_unique(rule, seen_rules, rule.name))
        group.notes = self.notes[first_note:]
        return group

    def rule(self, node: yaml.Node, where: str) -> AlertRule:
        fields = self.mapping(node, where, _RULE_KEYS)
        values = {key: value for key, (_, value) in fields.items()}
        name_node = self.either(node, where, values, "alert", "name")
        expr_node = self.either(node, where, values, "expr", "condition")
        name = self.string(name_node, _join(where, "alert"))
        condition = self.condition(expr_node, _join(where, "expr"))
        kwargs: dict[str, Any] = {"name": name, "condition": condition}
        field_where = {key: _join(where, key) for key in values}
        for key, value_node in values.items():
            w = field_where[key]
            if key == "for":
                kwargs["for_"] = self.duration(value_node, w)
            elif key == "keep_firing_for":
                kwargs["keep_firing_for"] = self.duration(value_node, w)
            elif key == "severity":
                kwargs["severity"] = self.enum(value_node, w, AlertSeverity, AlertSeverity)
            elif key == "type":
                kwargs["alert_type"] = self.enum(value_node, w, AlertType, AlertType)
            elif key == "description":
                kwargs["description"] = self.string(value_node, w)
            elif key in ("cooldown", "escalation"):
                minutes = self.duration(value_node, w) / 60.0
                kwargs[f"{key}_minutes"] = minutes
            elif key in ("cooldown_minutes", "escalation_minutes"):
                kwargs[key] = self.number(value_node, w)
            elif key in ("channels", "escalation_channels"):
                kwargs[key] = [
                    self.enum(item, f"{w}[{j}]", NotificationChannel, NotificationChannel)
                    for j, item in enumerate(self.sequence(value_node, w))
                ]
            elif key == "recovery_threshold":
                kwargs[key] = self.number(value_node, w)
            elif key in ("labels", "annotations"):
                kwargs[key] = self.string_map(value_node, w, labels=key == "labels")
                self.check_templates(value_node, w)
            elif key == "enabled":
                enabled = self.scalar(value_node, w)
                if not isinstance(enabled, bool):
                    raise self.error(value_node, w, "expected true or false")
                kwargs["enabled"] = enabled
        if "severity" not in values and "severity" not in kwargs.get("labels", {}):
            # a rule that states no severity gives its alerts no severity label, as in
            # Prometheus (botmon still handles them as warnings)
            kwargs["labels"] = {**kwargs.get("labels", {}), "severity": ""}
        if "recovery_threshold" in values and self._comparison not in ("<", "<=", ">", ">="):
            raise self.error(
                values["recovery_threshold"], field_where["recovery_threshold"],
                "needs a condition whose top-level comparison is <, <=, > or >=",
            )
        try:
            return AlertRule(**kwargs)
        except ValueError as exc:
            raise self.error(node, where, str(exc)) from None

    def recording(self, node: yaml.Node, where: str) -> RecordingRule:
        fields = self.mapping(node, where, _RECORD_KEYS)
        name_node = fields["record"][1]
        name = self.string(name_node, _join(where, "record"))
        if not METRIC_NAME.match(name):
            raise self.error(name_node, _join(where, "record"),
                             f"invalid metric name {name!r} (a recorded series is named as "
                             "in Prometheus: [a-zA-Z_:][a-zA-Z0-9_:]*)")
        if "expr" not in fields:
            raise self.error(node, _join(where, "expr"), "missing")
        expr = self.condition(fields["expr"][1], _join(where, "expr"))
        labels = self.string_map(fields["labels"][1], _join(where, "labels"),
                                 labels=True) if "labels" in fields else {}
        return RecordingRule(name, expr, labels)

    def either(
        self, node: yaml.Node, where: str, values: dict[str, yaml.Node], a: str, b: str
    ) -> yaml.Node:
        if a in values and b in values:
            raise self.error(values[b], _join(where, b), f"give either '{a}' or '{b}', not both")
        if a not in values and b not in values:
            raise self.error(node, _join(where, a), "missing")
        return values[a] if a in values else values[b]

    def condition(self, node: yaml.Node, where: str) -> str:
        if isinstance(node, yaml.ScalarNode) and node.tag in (
            "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
        ):
            text = str(node.value)  # `expr: 1`: a number, as Prometheus reads it
        else:
            text = self.string(node, where)
        try:
            compiled = compile_condition(text)
        except RuleSyntaxError as exc:
            line, column = scalar_position(self.text, node, exc.position)
            raise RuleFileError(
                self.filename, line, column, where, f"{exc.message}\n{_caret(exc)}"
            ) from None
        self._comparison = compiled.comparison
        for position, note in promql_differences(compiled.tree):
            line, column = scalar_position(self.text, node, position)
            self.notes.append(f"{self.filename}:{line}:{column}: {where}: {note}")
        return text


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _caret(exc: RuleSyntaxError) -> str:
    return "\n".join(str(exc).split("\n")[1:])
