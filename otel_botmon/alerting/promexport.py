"""Export botmon alert rules as a Prometheus rule file.

Each condition's syntax tree is written as PromQL over the Prometheus names of the
metrics (``alerting.promnames``); derived values (``cpu``, ``win_rate``...) are expanded.
Labelless operands get explicit ``on()`` matching so that PromQL matches series exactly
as botmon does. A rule that cannot be expressed is skipped with the reason; a rule that
translates with a difference (a recovery threshold: Prometheus has no hysteresis) is
exported with a note.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from otel_botmon.alerting.expr import Condition, compile_condition
from otel_botmon.alerting.expr_parser import (
    COMPARISONS,
    Binary,
    Call,
    Derived,
    Node,
    Number,
    Selector,
    VType,
)
from otel_botmon.alerting.history import MetricKind
from otel_botmon.alerting.model import AlertRule
from otel_botmon.alerting.promnames import prom_label, prom_metric
from otel_botmon.alerting.rules import RuleGroup

__all__ = [
    "ExportResult",
    "NotTranslatable",
    "export_prometheus",
    "format_duration",
    "to_promql",
    "translate_template",
]

SEVERITY_LABEL = "severity"
_RE2_UNSUPPORTED = re.compile(r"\(\?[=!<P]|\\[1-9]")


class NotTranslatable(ValueError):
    """A condition or rule that has no PromQL equivalent; the message says why."""


@dataclass
class ExportResult:
    """The rule file (``document``, dump it with :meth:`to_yaml`), which rules were
    exported, which were skipped and why, and notes on exported rules that differ."""

    document: dict[str, Any]
    exported: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.document, sort_keys=False, allow_unicode=True, width=1000)


def export_prometheus(
    rules: Iterable[AlertRule | RuleGroup], default_group: str = "botmon"
) -> ExportResult:
    """Translate ``rules`` (bare rules go to group ``default_group``) to a Prometheus
    rule-file document. Never raises for a rule that does not translate: it is listed
    in ``skipped``."""
    groups: list[RuleGroup] = []
    loose = RuleGroup(default_group)
    for item in rules:
        if isinstance(item, RuleGroup):
            groups.append(item)
        else:
            loose.rules.append(item)
    if loose.rules:
        groups.insert(0, loose)
    result = ExportResult({"groups": []})
    for group in groups:
        out_rules = []
        for rule in group.rules:
            try:
                out_rules.append(_rule(rule, result))
            except NotTranslatable as exc:
                result.skipped.append((rule.name, str(exc)))
                continue
            result.exported.append(rule.name)
        if not out_rules:
            continue
        doc: dict[str, Any] = {"name": group.name}
        if group.interval_s:
            doc["interval"] = format_duration(group.interval_s)
        doc["rules"] = out_rules
        result.document["groups"].append(doc)
    return result


def _rule(rule: AlertRule, result: ExportResult) -> dict[str, Any]:
    if not rule.enabled:
        raise NotTranslatable("rule is disabled")
    condition = compile_condition(rule.condition)
    out: dict[str, Any] = {"alert": rule.name, "expr": to_promql(condition)}
    if rule.for_ > 0:
        out["for"] = format_duration(rule.for_)
    if rule.keep_firing_for > 0:
        out["keep_firing_for"] = format_duration(rule.keep_firing_for)
    labels = {prom_label(k): v for k, v in rule.labels.items()}
    labels.setdefault(SEVERITY_LABEL, rule.severity.value)
    out["labels"] = labels
    if rule.annotations:
        out["annotations"] = {k: translate_template(v) for k, v in rule.annotations.items()}
    if rule.recovery_threshold is not None:
        result.notes.append((
            rule.name,
            f"recovery_threshold {rule.recovery_threshold:g} not exported: Prometheus "
            "alerts have no hysteresis (resolves as soon as the condition stops holding)",
        ))
    return out


def to_promql(condition: Condition | str) -> str:
    """The PromQL expression of a condition (compiled or text); raises
    :class:`NotTranslatable` when there is none."""
    if isinstance(condition, str):
        condition = compile_condition(condition)
    tree = condition.tree
    text = _expr(tree)
    if tree.vtype is VType.SCALAR:  # an alert expression must be a vector
        text = f"vector({text})"
    return text


def _expr(node: Node) -> str:
    if isinstance(node, Number):
        return _number(node.value)
    if isinstance(node, Derived):
        return f"({_expr(node.expansion)})"
    if isinstance(node, Selector):
        return _selector(node)
    if isinstance(node, Call):
        return _call(node)
    if isinstance(node, Binary):
        return _binary(node)
    raise NotTranslatable(f"unsupported expression {type(node).__name__}")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "(-Inf)"
    text = repr(value)
    if text.endswith(".0"):
        text = text[:-2]
    return f"({text})" if value < 0 else text


def _selector(sel: Selector, histogram_component: str | None = None) -> str:
    component = histogram_component or sel.component
    kind = sel.kind if sel.component is None else MetricKind.HISTOGRAM
    name = prom_metric(sel.metric, kind, component)
    parts = []
    for m in sel.matchers:
        if m.pattern is not None and _RE2_UNSUPPORTED.search(m.value):
            raise NotTranslatable(
                f"regular expression {m.value!r} uses a feature Prometheus (RE2) lacks"
            )
        parts.append(f"{prom_label(m.label)}{m.op}{_quote(m.value)}")
    text = name + ("{" + ",".join(parts) + "}" if parts else "")
    if sel.range_s is not None:
        text += f"[{format_duration(sel.range_s)}]"
    return text


def _call(node: Call) -> str:
    func = node.func
    if func == "histogram_quantile":
        sel = node.args[0]
        assert isinstance(sel, Selector) and node.quantile is not None
        inner = f"rate({_selector(sel, 'bucket')})"
        if node.by is not None:
            by = ", ".join(["le", *(prom_label(b) for b in node.by)])
            inner = f"sum by ({by}) ({inner})"
        return f"histogram_quantile({_number(node.quantile)}, {inner})"
    if func == "abs" and node.args[0].vtype is VType.SCALAR:
        raise NotTranslatable("abs() of a constant has no PromQL form; write the number")
    args = ", ".join(_expr(a) for a in node.args)
    if node.by:
        return f"{func} by ({', '.join(prom_label(b) for b in node.by)}) ({args})"
    return f"{func}({args})"


def _binary(node: Binary) -> str:
    left, right = _expr(node.left), _expr(node.right)
    lt, rt = node.left.vtype, node.right.vtype
    if node.op in ("and", "or"):
        if lt is VType.SCALAR:
            left = f"vector({left})"
        if rt is VType.SCALAR:
            right = f"vector({right})"
        on = " on()" if node.op == "and" and (node.left.labelless or node.right.labelless) else ""
        return f"({left} {node.op}{on} {right})"
    if lt is VType.SCALAR and rt is VType.SCALAR:
        if node.op in COMPARISONS:
            return f"(vector({left}) {node.op} {right})"
        return f"({left} {node.op} {right})"
    modifier = ""
    if lt is not VType.SCALAR and rt is not VType.SCALAR:
        if node.right.labelless and not node.left.labelless:
            modifier = " on() group_left()"
        elif node.left.labelless and not node.right.labelless:
            modifier = " on() group_right()"
    return f"({left} {node.op}{modifier} {right})"


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def format_duration(seconds: float) -> str:
    """A Prometheus duration (``1h30m``, ``90s``, ``1500ms``) for ``seconds``."""
    ms = round(seconds * 1000)
    if ms <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000),
                       ("ms", 1)):
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(parts)


_TEMPLATE = re.compile(
    r"\{\{.*?\}\}"
    r"|\{\s*(?P<var>\$?value|rule|labels\[(?P<q>['\"]?)(?P<blabel>[^\]'\"]+)(?P=q)\]"
    r"|\$?labels\.(?P<dlabel>[A-Za-z_][\w.]*))(?::(?P<spec>[^{}]*))?\s*\}"
)
_PRINTF_SPEC = re.compile(r"^\.(\d{1,2})([fge])$")


def translate_template(text: str) -> str:
    """A botmon annotation template in Go-template form: ``{value:.2f}`` ->
    ``{{ printf "%.2f" $value }}``, ``{labels[x.y]}`` -> ``{{ $labels.x_y }}``,
    ``{rule}`` -> ``{{ $labels.alertname }}``; ``{{ ... }}`` stays as written."""

    def substitute(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole.startswith("{{"):
            return re.sub(
                r"\$labels\.([A-Za-z_][\w.]*)",
                lambda m: "$labels." + prom_label(m.group(1)),
                whole,
            )
        label = match.group("blabel") or match.group("dlabel")
        if label is not None:
            return "{{ $labels." + prom_label(label) + " }}"
        if match.group("var") == "rule":
            return "{{ $labels.alertname }}"
        spec = _PRINTF_SPEC.match(match.group("spec") or "")
        if spec:
            return '{{ printf "%.' + spec.group(1) + spec.group(2) + '" $value }}'
        return "{{ $value }}"

    return _TEMPLATE.sub(substitute, text)
