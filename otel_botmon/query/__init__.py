"""The query engine: the PromQL-shaped condition language over a bounded metric history.

The narrow face::

    history = MetricHistory()                  # bounded, in-process
    history.ingest(metrics_data, at=now)       # one SDK collect (or add_point/mark_stale)
    query = compile("rate(botmon.trades[5m]) > 2")   # RuleSyntaxError with the column
    query.evaluate(history, now)               # -> list[Sample]: the series where it holds

Inside: ``_types`` (labels, samples, kinds, matchers), ``_lexer``/``_parser``/``_nodes``
(the syntax), ``_maths`` (each PromQL function once), the history (storage, whose
internals the evaluator does not see: it asks for selections, current values and window
edges): ``_history`` writes, ``_history_reads`` reads, ``_columns`` is the column store
they share and ``_sdk_points`` converts SDK points; and ``_eval`` (evaluation). Tools
that read the syntax tree (PromQL export, promtool tests) use :mod:`otel_botmon.query.syntax`.
"""

from __future__ import annotations

from otel_botmon.query._catalog import DERIVED as KPIS
from otel_botmon.query._catalog import DerivedValue as KPI
from otel_botmon.query._compile import Condition, compile_condition
from otel_botmon.query._compile import compile_condition as compile
from otel_botmon.query._history import MetricHistory
from otel_botmon.query._lexer import RuleSyntaxError
from otel_botmon.query._types import EMPTY_LABELS, Labels, Matcher, MetricKind, Sample

__all__ = [  # noqa: RUF022 - grouped by source module, as the house style asks
    # _catalog (the derived values of the language are the KPIs, defined once)
    "KPI",
    "KPIS",
    # _compile
    "Condition",
    "compile",
    "compile_condition",
    # _history
    "MetricHistory",
    # _lexer
    "RuleSyntaxError",
    # _types
    "EMPTY_LABELS",
    "Labels",
    "Matcher",
    "MetricKind",
    "Sample",
]
