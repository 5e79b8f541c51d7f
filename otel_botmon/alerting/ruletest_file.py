"""Reading a ``promtool test rules`` file as strictly as promtool 2.42 does.

promtool decodes the file with Go's strict YAML decoder into fixed types, so it refuses
unknown or misspelt keys (``alert_rule_tests``), repeated keys, a list where a mapping
is expected (``exp_labels: [a, b]``), a string where a list or mapping is expected, and
durations that are not Prometheus durations (``eval_time: 2`` or ``1.5m``). This module
refuses the same files, and says where: every error reads ``file:line:column: field:
why``. Scalars that Go decodes into strings (numbers, booleans) are taken as their text,
as Go does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml

from otel_botmon.alerting.yamlnodes import compose, did_you_mean, scalar_position
from otel_botmon.query.syntax import RuleSyntaxError, read_string

__all__ = [
    "MAX_SAMPLES",
    "STALE",
    "AlertCheck",
    "ExpectedSample",
    "ExprCheck",
    "InputSeries",
    "RuleTestError",
    "TestFile",
    "TestGroup",
    "parse_duration",
    "parse_series",
    "parse_values",
    "read_test_file",
]

STALE = "stale"
MAX_SAMPLES = 1_000_000
"""Most input samples one test file may expand to (``1x1000000000`` is refused)."""

_NUM = (r"(?:[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
        r"|(?i:inf|nan))")  # PromQL's lexer reads inf and nan in any case (INF, Nan)
# promtool reads `Infx3` as a name: expanding notation takes finite numbers only
_FINITE = r"(?:[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)"
_EXPANDING = re.compile(rf"^(?P<a>[+-]?{_FINITE})(?P<b>[+-]{_FINITE})?x(?P<n>[0-9]+)$")
_PLAIN = re.compile(rf"^[+-]?{_NUM}$")
_MISSING = re.compile(r"^_(?:x(?P<n>[0-9]+))?$")
# Prometheus' model.ParseDuration: units in this order, each at most once, integers only
_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_DURATION_UNITS = (31536000.0, 604800.0, 86400.0, 3600.0, 60.0, 1.0, 0.001)
_SERIES_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*")

Value = float | str | None  # a number, STALE, or None for a missing sample


class RuleTestError(ValueError):
    """A test file that cannot be run (unreadable, malformed, unknown series...).

    ``unreadable`` is True when the test file itself could not be read.
    """

    unreadable = False


def parse_duration(text: object, where: str) -> float:
    """Seconds of a Prometheus duration (``5m``, ``1h30m``, ``0``), as promtool reads
    one: a number without a unit (``2``) or a fraction (``1.5m``) is refused."""
    if isinstance(text, str):
        value = text.strip()
        if value == "0":
            return 0.0
        m = _DURATION.match(value)
        if value and m is not None:
            return sum(int(g) * unit for g, unit in zip(m.groups(), _DURATION_UNITS,
                                                       strict=True) if g is not None)
    raise RuleTestError(f"{where}: not a valid duration string: {text!r}")


def parse_values(text: str, budget: list[int] | None = None) -> list[Value]:
    """Expand promtool's series notation: ``0+10x3`` -> 0 10 20 30, ``1x2`` -> 1 1 1,
    ``_x2`` -> two missing samples, ``stale`` -> a stale marker. ``budget`` (a one-item
    list) is the number of samples still allowed; it is decreased."""
    left = budget if budget is not None else [MAX_SAMPLES]
    out: list[Value] = []
    for item in str(text).split():
        missing = _MISSING.match(item)
        if missing:
            count = int(missing.group("n") or 1)
            _spend(left, count, item)
            out.extend([None] * count)
        elif item == STALE:
            _spend(left, 1, item)
            out.append(STALE)
        elif _PLAIN.match(item):
            _spend(left, 1, item)
            out.append(_float(item))
        else:
            m = _EXPANDING.match(item)
            if m is None:
                raise RuleTestError(f"cannot read series value {item!r}")
            count = int(m.group("n")) + 1
            _spend(left, count, item)
            value = _float(m.group("a"))
            if m.group("b") is None:  # `axn`: the value itself again (-0 stays -0)
                out.extend([value] * count)
                continue
            step = _float(m.group("b"))
            for _ in range(count):
                out.append(value)
                value += step
    return out


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value) and "inf" not in text.lower():
        # as promtool (Go's ParseFloat): a number beyond a float is an error, not ±Inf
        raise RuleTestError(f"series value {text!r} is out of range")
    return value


def _spend(budget: list[int], count: int, item: str) -> None:
    budget[0] -= count
    if budget[0] < 0:
        raise RuleTestError(
            f"series value {item!r}: more than {MAX_SAMPLES} input samples in one file"
        )


def parse_series(text: str) -> tuple[str, dict[str, str]]:
    """``name{label="value", ...}`` (or ``{__name__="name", ...}``) -> name and labels."""
    text = text.strip()
    m = _SERIES_NAME.match(text)
    name = m.group(0) if m else ""
    i = m.end() if m else 0
    labels: dict[str, str] = {}
    if i < len(text):
        if text[i] != "{" or not text.endswith("}"):
            raise RuleTestError(f"cannot read series {text!r}")
        body, j = text[i + 1 : -1], 0
        while j < len(body):
            lm = _LABEL.match(body, j)
            if lm is None:
                raise RuleTestError(f"cannot read labels of series {text!r}")
            value, j = _quoted(body, lm.end(), text)
            if value:  # as in Prometheus, a label with an empty value is no label
                labels[lm.group(1)] = value
            else:
                labels.pop(lm.group(1), None)
            while j < len(body) and body[j] in " ,":
                j += 1
    name = labels.pop("__name__", name)
    if not name:
        raise RuleTestError(f"series {text!r} has no metric name")
    return name, labels


def _quoted(body: str, i: int, whole: str) -> tuple[str, int]:
    # a Go string, as promtool reads it (\u00e9, \x41, octal, \r ... included)
    if i >= len(body) or body[i] not in "\"'`":
        raise RuleTestError(f"expected a quoted label value in {whole!r}")
    try:
        return read_string(body, i)
    except RuleSyntaxError as exc:
        raise RuleTestError(f"label value in {whole!r}: {exc.message}") from None


@dataclass
class InputSeries:
    name: str
    labels: dict[str, str]
    values: list[Value]
    where: str


@dataclass
class AlertCheck:
    eval_time: float
    eval_text: str
    alertname: str
    expected: list[tuple[dict[str, str], dict[str, str]]]


@dataclass
class ExpectedSample:
    name: str | None
    labels: dict[str, str]
    value: float


@dataclass
class ExprCheck:
    expr: str
    eval_time: float
    eval_text: str
    samples: list[ExpectedSample]
    locate: Callable[[int], str]
    """``file:line:col`` of a character of ``expr``."""


@dataclass
class TestGroup:
    index: int
    interval: float | None
    series: list[InputSeries] = field(default_factory=list)
    alert_checks: list[AlertCheck] = field(default_factory=list)
    expr_checks: list[ExprCheck] = field(default_factory=list)
    name: str = ""
    external_labels: dict[str, str] = field(default_factory=dict)
    """``$externalLabels`` of the rules' templates (promtool's ``external_labels``)."""
    external_url: str = ""
    """``$externalURL`` of the rules' templates (promtool's ``external_url``)."""


@dataclass
class TestFile:
    rule_files: list[str]
    evaluation_interval: float
    group_eval_order: list[str]
    tests: list[TestGroup]


_TOP = ("rule_files", "evaluation_interval", "group_eval_order", "tests")
_GROUP = ("interval", "input_series", "alert_rule_test", "promql_expr_test",
          "external_labels", "external_url", "name")
_SERIES = ("series", "values")
_ALERT_TEST = ("eval_time", "alertname", "exp_alerts")
_ALERT = ("exp_labels", "exp_annotations")
_EXPR_TEST = ("expr", "eval_time", "exp_samples")
_SAMPLE = ("labels", "value")


class _Reader:
    def __init__(self, filename: str, source: str) -> None:
        self.filename = filename
        self.source = source
        self.budget = [MAX_SAMPLES]

    def at(self, node: yaml.Node) -> str:
        mark = node.start_mark
        return f"{self.filename}:{mark.line + 1}:{mark.column + 1}"

    def error(self, node: yaml.Node, where: str, message: str) -> RuleTestError:
        return RuleTestError(f"{self.at(node)}: {where}: {message}")

    def mapping(self, node: yaml.Node, where: str, keys: tuple[str, ...],
                type_name: str) -> dict[str, yaml.Node]:
        if _is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, where, f"cannot unmarshal {_tag(node)} into {type_name}")
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            if key not in keys:
                raise self.error(key_node, _join(where, key),
                                 f"field {key} not found in type {type_name} "
                                 f"({did_you_mean(key, keys)}known: {', '.join(keys)})")
            if key in out:
                raise self.error(key_node, _join(where, key),
                                 f"field {key} already set in type {type_name}")
            out[key] = value_node
        return out

    def sequence(self, node: yaml.Node | None, where: str, of: str) -> list[yaml.Node]:
        if node is None or _is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, where, f"cannot unmarshal {_tag(node)} into []{of}")
        return list(node.value)

    def text(self, node: yaml.Node | None, where: str) -> str:
        """A Go string: any scalar, as written; null is ""."""
        if node is None or _is_null(node):
            return ""
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, where, f"cannot unmarshal {_tag(node)} into string")
        return str(node.value)

    def string_map(self, node: yaml.Node | None, where: str) -> dict[str, str]:
        if node is None or _is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, where,
                             f"cannot unmarshal {_tag(node)} into map[string]string")
        out: dict[str, str] = {}
        for key_node, value_node in node.value:
            key = self.text(key_node, where)
            if key in out:
                raise self.error(key_node, _join(where, key), "duplicate key")
            out[key] = self.text(value_node, _join(where, key))
        return out

    def number(self, node: yaml.Node | None, where: str) -> float:
        if node is None or _is_null(node):
            return 0.0
        if isinstance(node, yaml.ScalarNode) and node.tag in (
            "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
        ):
            try:
                value = yaml.constructor.SafeConstructor().construct_object(node)
            except (yaml.YAMLError, ValueError, OverflowError):
                value = None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                try:
                    return float(value)
                except OverflowError:
                    return math.copysign(math.inf, value)
        raise self.error(node, where, f"cannot unmarshal {_tag(node)} into float64")

    def duration(self, node: yaml.Node | None, where: str) -> tuple[float, str]:
        if node is None or _is_null(node):
            return 0.0, "0s"
        text = self.text(node, where)
        try:
            return parse_duration(text, where), text
        except RuleTestError as exc:
            raise RuleTestError(f"{self.at(node)}: {exc}") from None

    # --- the document ----------------------------------------------------------------

    def read(self, root: yaml.Node | None) -> TestFile:
        if root is None:
            return TestFile([], 60.0, [], [])
        top = self.mapping(root, "", _TOP, "unitTestFile")
        rule_files = [self.text(n, f"rule_files[{i}]")
                      for i, n in enumerate(self.sequence(top.get("rule_files"),
                                                          "rule_files", "string"))]
        interval, _ = self.duration(top.get("evaluation_interval"), "evaluation_interval")
        order = [self.text(n, f"group_eval_order[{i}]")
                 for i, n in enumerate(self.sequence(top.get("group_eval_order"),
                                                     "group_eval_order", "string"))]
        if len(set(order)) != len(order):
            node = top["group_eval_order"]
            raise self.error(node, "group_eval_order", "group name repeated in evaluation order")
        tests = [self.group(n, i)
                 for i, n in enumerate(self.sequence(top.get("tests"), "tests", "testGroup"))]
        return TestFile(rule_files, interval or 60.0, order, tests)

    def group(self, node: yaml.Node, index: int) -> TestGroup:
        where = f"tests[{index}]"
        fields = self.mapping(node, where, _GROUP, "testGroup")
        interval = None
        if "interval" in fields:
            interval = self.duration(fields["interval"], _join(where, "interval"))[0] or None
        group = TestGroup(
            index, interval, name=self.text(fields.get("name"), where),
            external_labels=self.string_map(fields.get("external_labels"),
                                            _join(where, "external_labels")),
            external_url=self.text(fields.get("external_url"), _join(where, "external_url")),
        )
        for j, item in enumerate(self.sequence(fields.get("input_series"),
                                               _join(where, "input_series"), "series")):
            group.series.append(self.series(item, f"{where}.input_series[{j}]"))
        for j, item in enumerate(self.sequence(fields.get("alert_rule_test"),
                                               _join(where, "alert_rule_test"),
                                               "alertTestCase")):
            group.alert_checks.append(self.alert_check(item, f"{where}.alert_rule_test[{j}]"))
        for j, item in enumerate(self.sequence(fields.get("promql_expr_test"),
                                               _join(where, "promql_expr_test"),
                                               "promqlTestCase")):
            group.expr_checks.append(self.expr_check(item, f"{where}.promql_expr_test[{j}]"))
        return group

    def series(self, node: yaml.Node, where: str) -> InputSeries:
        fields = self.mapping(node, where, _SERIES, "series")
        series_node = fields.get("series", node)
        try:
            name, labels = parse_series(self.text(fields.get("series"), _join(where, "series")))
        except RuleTestError as exc:
            raise self.error(series_node, _join(where, "series"), str(exc)) from None
        values_node = fields.get("values", node)
        try:
            values = parse_values(self.text(fields.get("values"), _join(where, "values")),
                                  self.budget)
        except RuleTestError as exc:
            raise self.error(values_node, _join(where, "values"), str(exc)) from None
        return InputSeries(name, labels, values, self.at(series_node))

    def alert_check(self, node: yaml.Node, where: str) -> AlertCheck:
        fields = self.mapping(node, where, _ALERT_TEST, "alertTestCase")
        seconds, text = self.duration(fields.get("eval_time"), _join(where, "eval_time"))
        alertname = self.text(fields.get("alertname"), _join(where, "alertname"))
        if not alertname:
            raise self.error(node, where, "an item under alert_rule_test misses required "
                             f"attribute alertname at eval_time {text}")
        expected = []
        for k, item in enumerate(self.sequence(fields.get("exp_alerts"),
                                               _join(where, "exp_alerts"), "alert")):
            w = f"{where}.exp_alerts[{k}]"
            alert = self.mapping(item, w, _ALERT, "alert")
            expected.append((self.string_map(alert.get("exp_labels"), _join(w, "exp_labels")),
                             self.string_map(alert.get("exp_annotations"),
                                             _join(w, "exp_annotations"))))
        return AlertCheck(seconds, text, alertname, expected)

    def expr_check(self, node: yaml.Node, where: str) -> ExprCheck:
        fields = self.mapping(node, where, _EXPR_TEST, "promqlTestCase")
        seconds, text = self.duration(fields.get("eval_time"), _join(where, "eval_time"))
        expr_node = fields.get("expr")
        expr = self.text(expr_node, _join(where, "expr"))
        samples = []
        for k, item in enumerate(self.sequence(fields.get("exp_samples"),
                                               _join(where, "exp_samples"), "sample")):
            w = f"{where}.exp_samples[{k}]"
            sample = self.mapping(item, w, _SAMPLE, "sample")
            labels_text = self.text(sample.get("labels"), _join(w, "labels"))
            try:
                name, labels = _parse_metric(labels_text)
            except RuleTestError as exc:
                raise self.error(sample.get("labels", item), _join(w, "labels"),
                                 str(exc)) from None
            samples.append(ExpectedSample(name, labels,
                                          self.number(sample.get("value"), _join(w, "value"))))
        source, filename = self.source, self.filename
        anchor = expr_node if expr_node is not None else node

        def locate(offset: int) -> str:
            if isinstance(anchor, yaml.ScalarNode):
                line, column = scalar_position(source, anchor, offset)
                return f"{filename}:{line}:{column}"
            return self.at(anchor)

        return ExprCheck(expr, seconds, text, samples, locate)


def _parse_metric(text: str) -> tuple[str | None, dict[str, str]]:
    stripped = text.strip()
    if not stripped:  # no labels given: the sample of a labelless result
        return None, {}
    if stripped.startswith("{"):
        try:
            return parse_series(stripped)
        except RuleTestError:
            return None, parse_series("x" + stripped)[1]
    return parse_series(stripped)


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _tag(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "!!map"
    if isinstance(node, yaml.SequenceNode):
        return "!!seq"
    short = str(node.tag).rsplit(":", 1)[-1]
    return f"!!{short} `{node.value}`"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def read_test_file(filename: str, source: str) -> TestFile:
    """The test file ``source`` (read from ``filename``); raises :class:`RuleTestError`
    with ``file:line:column`` for anything promtool would refuse."""
    try:
        root = compose(source)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = filename if mark is None else f"{filename}:{mark.line + 1}:{mark.column + 1}"
        raise RuleTestError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise RuleTestError(f"{filename}: invalid YAML: {exc}") from None
    return _Reader(filename, source).read(root)
