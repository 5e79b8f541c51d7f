"""Parser of the condition language: tokens -> a typed syntax tree.

A recursive-descent parser with one function per precedence level (lowest first):
``or`` < ``and`` < ``not`` < comparisons < ``+ -`` < ``* / %`` < unary minus < primary.
Every node knows its value type (number, series, window) and whether it is *labelless*
(at most one series with no labels, e.g. ``cpu`` or ``sum(x)``), so type and name
errors are found at compile time, with the column of the offending token. This module
is the grammar and the names; the type rules that build each node are ``_typecheck``'s.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping

from otel_botmon.query._catalog import (
    AGGREGATIONS,
    CASELESS_WORDS,
    DERIVED,
    KEYWORDS,
    OTHER_FUNCTIONS,
    QUANTILE_SHORTHANDS,
    RATE_FUNCTIONS,
    known_metric_kinds,
    refuse_function,
    refuse_reserved_name,
)
from otel_botmon.query._lexer import RuleSyntaxError, Token, TokenKind, tokenize
from otel_botmon.query._nodes import (
    COMPARISONS,
    Call,
    Derived,
    Matcher,
    Matching,
    Node,
    Number,
    Selector,
    VType,
)
from otel_botmon.query._regex import AnchoredRegex, RegexError, compile_anchored
from otel_botmon.query._typecheck import MAX_DEPTH, OVER_TIME, TypeChecker
from otel_botmon.query._types import MetricKind

__all__ = ["parse"]

_HISTOGRAM_COMPONENTS = ("count", "sum")
_METRIC_NAME = "__name__"


class _Parser(TypeChecker):
    def __init__(self, text: str, metrics: Mapping[str, MetricKind], allow_derived: bool):
        super().__init__(text)
        self.tokens = tokenize(text)
        self.i = 0
        self.metrics = metrics
        self.allow_derived = allow_derived
        self.nesting = 0

    # --- token helpers -----------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str, pos: int | None = None) -> RuleSyntaxError:
        return RuleSyntaxError(message, self.text, self.tok.pos if pos is None else pos)

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind is not TokenKind.EOF:
            self.i += 1
        return tok

    def at(self, kind: TokenKind, text: str | None = None) -> bool:
        tok = self.tok
        return tok.kind is kind and (text is None or tok.text == text)

    def at_keyword(self, word: str) -> bool:
        return self.tok.kind is TokenKind.IDENT and _word(self.tok) == word

    def expect(self, kind: TokenKind, text: str, what: str) -> Token:
        if not self.at(kind, text):
            raise self.error(f"expected {what}, found {_describe(self.tok)}")
        return self.advance()

    def nest(self) -> None:
        """One level deeper, just after its opening token (reported if too deep)."""
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise self.error(f"expression nested deeper than {MAX_DEPTH} levels",
                             self.tokens[max(self.i - 1, 0)].pos)

    # --- grammar -----------------------------------------------------------------------

    def parse(self) -> Node:
        if self.at(TokenKind.EOF):
            raise self.error("empty condition")
        node = self.parse_or()
        if not self.at(TokenKind.EOF):
            if self.at(TokenKind.IDENT) and self.tok.text == "atan2":
                raise self.error("the PromQL operator 'atan2' is not supported")
            raise self.error(f"unexpected {_describe(self.tok)}")
        if node.vtype in (VType.RANGE, VType.HIST_RANGE):
            raise RuleSyntaxError(
                "a window cannot be a condition by itself; wrap it in a function such as "
                "rate(...) or avg(...)", self.text, node.pos,
            )
        return node

    def parse_or(self) -> Node:
        left = self.parse_and()
        while self.at_keyword("or"):
            op = self.advance()
            matching = self.parse_matching("or")
            left = self.set_op("or", left, self.parse_and(), op.pos, matching)
        return left

    def parse_and(self) -> Node:
        left = self.parse_not()
        while self.at_keyword("and") or self.at_keyword("unless"):
            op = self.advance()
            matching = self.parse_matching(_word(op))
            left = self.set_op(_word(op), left, self.parse_not(), op.pos, matching)
        return left

    def parse_matching(self, op: str) -> Matching | None:
        """``on(...)``/``ignoring(...)`` and, for arithmetic and comparisons,
        ``group_left(...)``/``group_right(...)`` after a binary operator."""
        if not (self.at_keyword("on") or self.at_keyword("ignoring")):
            if self.at_keyword("group_left") or self.at_keyword("group_right"):
                raise self.error(f"{self.tok.text} needs on(...) or ignoring(...) before it")
            return None
        on = _word(self.advance()) == "on"
        labels = self.parse_label_list("on" if on else "ignoring")
        set_op = op in ("and", "or", "unless")
        if self.at_keyword("group_left") or self.at_keyword("group_right"):
            group = self.advance()
            word = _word(group)
            if set_op:
                raise self.error(f"{word} does not apply to '{op}'", group.pos)
            include = self.parse_label_list(word) if self.at(TokenKind.PUNCT, "(") else ()
            card = "many-to-one" if word == "group_left" else "one-to-many"
            if on and set(include) & set(labels):
                raise self.error("a label cannot be both matched on and included", group.pos)
            return Matching(on, labels, card, include)
        return Matching(on, labels, "many-to-many" if set_op else "one-to-one")

    def parse_label_list(self, what: str) -> tuple[str, ...]:
        self.expect(TokenKind.PUNCT, "(", f"'(' after '{what}'")
        names: list[str] = []
        while self.at(TokenKind.IDENT):
            if self.tok.text == _METRIC_NAME and what in ("by", "on", "group_left", "group_right"):
                # PromQL would keep or match the metric name; condition results have none
                raise self.error(f"'{what}({_METRIC_NAME})' is not supported: conditions do "
                                 "not keep metric names")
            names.append(self.advance().text)
            if not self.at(TokenKind.PUNCT, ","):
                break
            self.advance()
        self.expect(TokenKind.PUNCT, ")", "a label name or ')'")
        return tuple(names)

    def parse_not(self) -> Node:
        if self.at_keyword("not"):
            tok = self.advance()
            self.nest()
            operand = self.parse_not()
            self.nesting -= 1
            return self.negate(operand, tok.pos)
        return self.parse_comparison()

    def parse_comparison(self) -> Node:
        left = self.parse_additive()
        if self.at(TokenKind.OP) and self.tok.text in COMPARISONS:
            op = self.advance()
            as_bool = self.at_keyword("bool")
            if as_bool:
                self.advance()
            matching = self.parse_matching(op.text)
            right = self.parse_additive()
            if self.at(TokenKind.OP) and self.tok.text in COMPARISONS:
                raise self.error("comparisons cannot be chained; join them with 'and'")
            return self.binary(op.text, left, right, op.pos, matching, as_bool)
        return left

    def parse_additive(self) -> Node:
        left = self.parse_multiplicative()
        while self.at(TokenKind.OP) and self.tok.text in ("+", "-"):
            op = self.advance()
            matching = self.parse_matching(op.text)
            left = self.binary(op.text, left, self.parse_multiplicative(), op.pos, matching)
        return left

    def parse_multiplicative(self) -> Node:
        left = self.parse_unary()
        while self.at(TokenKind.OP) and self.tok.text in ("*", "/", "%"):
            op = self.advance()
            matching = self.parse_matching(op.text)
            left = self.binary(op.text, left, self.parse_unary(), op.pos, matching)
        return left

    def parse_unary(self) -> Node:
        if self.at(TokenKind.OP) and self.tok.text in ("-", "+"):
            op = self.advance()
            self.nest()
            operand = self.parse_unary()
            self.nesting -= 1
            if op.text == "+":
                return operand
            if isinstance(operand, Number):
                return Number(op.pos, VType.SCALAR, True, 1, -operand.value, "-" + operand.text)
            # PromQL negates (-0 for 0), which `-1 * x` does for every value; `0 - x`
            # gave 0
            minus_one = Number(op.pos, VType.SCALAR, True, 1, -1.0, "-1")
            return self.binary("*", minus_one, operand, op.pos)
        return self.parse_primary()

    def parse_primary(self) -> Node:
        tok = self.tok
        if tok.kind in (TokenKind.NUMBER, TokenKind.DURATION):
            self.advance()
            return Number(tok.pos, VType.SCALAR, True, 1, tok.value, tok.text)
        if self.at(TokenKind.PUNCT, "("):
            self.advance()
            self.nest()
            inner = self.parse_or()
            self.nesting -= 1
            self.expect(TokenKind.PUNCT, ")", "')'")
            return inner
        if tok.kind is TokenKind.IDENT:
            return self.parse_name()
        if self.at(TokenKind.PUNCT, "{"):
            raise self.error("a selector without a metric name ({__name__=...}) is not "
                             "supported: start with the metric's name")
        raise self.error(f"expected a number, name or '(', found {_describe(tok)}")

    def parse_name(self) -> Node:
        tok = self.advance()
        name = _word(tok)
        if name in KEYWORDS:
            raise self.error(f"unexpected keyword '{name}'", tok.pos)
        if name.lower() in ("inf", "nan"):
            return Number(tok.pos, VType.SCALAR, True, 1, float(name), name)
        if self.at(TokenKind.PUNCT, "(") or self.at_keyword("by") or self.at_keyword("without"):
            return self.parse_call(tok, name)
        if name != tok.text:  # an aggregation spelt in capitals, without its arguments
            raise self.error(f"function '{name}' needs arguments in parentheses", tok.pos)
        if name in DERIVED and self.allow_derived:
            expansion = _parse_derived(name)
            return Derived(tok.pos, expansion.vtype, expansion.labelless, 1, name, expansion)
        return self.parse_selector(tok)

    def parse_selector(self, tok: Token) -> Node:
        name, component = tok.text, None
        kind = self.metrics.get(name)
        if kind is None:
            base, _, suffix = name.rpartition(".")
            if suffix in _HISTOGRAM_COMPONENTS and self.metrics.get(base) is MetricKind.HISTOGRAM:
                name, component, kind = base, suffix, MetricKind.COUNTER
        if kind is None:
            if _is_function(name):
                raise self.error(f"function '{name}' needs arguments in parentheses", tok.pos)
            kind = self.user_metric(name, tok.pos)
        matchers = self.parse_matchers() if self.at(TokenKind.PUNCT, "{") else ()
        range_s = self.parse_range() if self.at(TokenKind.PUNCT, "[") else None
        if self.at_keyword("offset"):
            raise self.error("'offset' is not supported (series are read at the evaluation "
                             "time)")
        if kind is MetricKind.HISTOGRAM and component is None:
            if range_s is None:
                raise self.error(
                    f"'{name}' is a histogram: use a window with a quantile such as "
                    f"p95({name}[5m]), or {name}.count / {name}.sum", tok.pos,
                )
            vtype = VType.HIST_RANGE
        else:
            vtype = VType.VECTOR if range_s is None else VType.RANGE
        return Selector(tok.pos, vtype, False, 1, name, kind, component, matchers, range_s)

    def user_metric(self, name: str, pos: int) -> MetricKind:
        """The kind of a metric that is not in conventions: any name is a series of the
        user's own (or a recording rule's), read as a gauge; except names in botmon's own
        namespaces and near-misses of known names, which are typos."""
        refusal = refuse_reserved_name(name, self.metrics)
        if refusal is not None:
            raise self.error(refusal, pos)
        close = difflib.get_close_matches(name, [*DERIVED, *self.metrics], n=1, cutoff=0.85)
        if close:
            raise self.error(f"unknown metric or value '{name}' (did you mean '{close[0]}'?)",
                             pos)
        return MetricKind.GAUGE

    def parse_matchers(self) -> tuple[Matcher, ...]:
        self.advance()
        matchers: list[Matcher] = []
        while not self.at(TokenKind.PUNCT, "}"):
            label = self.tok
            if label.kind is not TokenKind.IDENT:
                raise self.error(f"expected a label name, found {_describe(label)}")
            if label.text == _METRIC_NAME:  # as PromQL: the selector names its metric
                raise self.error("the metric name must not be set twice (a matcher on "
                                 f"{_METRIC_NAME} after the metric's name)")
            self.advance()
            op = self.tok
            if op.kind is not TokenKind.OP or op.text not in ("=", "!=", "=~", "!~"):
                raise self.error(f"expected =, !=, =~ or !~ after '{label.text}'")
            self.advance()
            value = self.tok
            if value.kind is not TokenKind.STRING:
                raise self.error(f"expected a quoted value, found {_describe(value)}")
            self.advance()
            pattern = _compile_regex(value.text, self.text, value.pos) if "~" in op.text else None
            matchers.append(Matcher(label.text, op.text, value.text, pattern))
            if not self.at(TokenKind.PUNCT, ","):
                break
            self.advance()
        self.expect(TokenKind.PUNCT, "}", "',' or '}'")
        return tuple(matchers)

    def parse_range(self) -> float:
        self.advance()
        tok = self.tok
        if tok.kind is not TokenKind.DURATION:
            raise self.error("expected a window such as [5m] (number with unit ms, s, m, h, d, w)")
        self.advance()
        if not (0 < tok.value < 366 * 86400) or not math.isfinite(tok.value):
            raise self.error("a window must be longer than 0 and at most a year", tok.pos)
        if abs(tok.value * 1000 - round(tok.value * 1000)) > 1e-6:
            raise self.error("a window must be a whole number of milliseconds", tok.pos)
        self.expect(TokenKind.PUNCT, "]", "']'")
        return tok.value

    def parse_grouping(self) -> tuple[tuple[str, ...], bool]:
        """``by (labels)`` or ``without (labels)``: the labels and whether to drop them."""
        word = _word(self.advance())
        return self.parse_label_list(word), word == "without"

    def at_grouping(self) -> bool:
        return self.at_keyword("by") or self.at_keyword("without")

    def parse_call(self, name_tok: Token, name: str) -> Node:
        if not _is_function(name):
            raise self.error(refuse_function(name), name_tok.pos)
        by, without = self.parse_grouping() if self.at_grouping() else (None, False)
        self.expect(TokenKind.PUNCT, "(", "'('")
        self.nest()
        args: list[Node] = []
        while not self.at(TokenKind.PUNCT, ")"):
            args.append(self.parse_or())
            if not self.at(TokenKind.PUNCT, ","):
                break
            self.advance()
        self.nesting -= 1
        self.expect(TokenKind.PUNCT, ")", "',' or ')'")
        if self.at_grouping():
            if by is not None:
                raise self.error("'by' or 'without' given twice")
            by, without = self.parse_grouping()
        if without and name not in AGGREGATIONS:
            raise self.error(f"'without' does not apply to {name}()", name_tok.pos)
        call = self.build_call(name, name_tok.pos, args, by)
        if without and isinstance(call, Call):
            if call.func not in AGGREGATIONS:
                raise self.error(f"'without' does not apply to {name}() over a window",
                                 name_tok.pos)
            call = dataclasses.replace(call, without=True, labelless=False)
        return call


def _word(tok: Token) -> str:
    """The identifier ``tok`` as the grammar reads it: PromQL's keywords and aggregation
    names in any case (``SUM``, ``By``, ``AND`` are ``sum``, ``by``, ``and``); any other
    name (a metric, a label, a function such as ``rate``) exactly as written."""
    lower = tok.text.lower()
    return lower if lower in CASELESS_WORDS else tok.text


def _is_function(name: str) -> bool:
    return (name in RATE_FUNCTIONS or name in AGGREGATIONS or name in QUANTILE_SHORTHANDS
            or name in OTHER_FUNCTIONS or name in OVER_TIME)


def _compile_regex(pattern: str, text: str, pos: int) -> AnchoredRegex:
    try:
        return compile_anchored(pattern)
    except RegexError as exc:
        raise RuleSyntaxError(f"invalid regular expression (RE2 syntax): {exc}", text,
                              pos) from None


def _describe(tok: Token) -> str:
    if tok.kind is TokenKind.EOF:
        return "end of condition"
    return f"{tok.kind.value} '{tok.text}'"


_DERIVED_CACHE: dict[str, Node] = {}


def _parse_derived(name: str) -> Node:
    # definitions only use conventions' metrics, so one parse serves every caller
    node = _DERIVED_CACHE.get(name)
    if node is None:
        metrics = known_metric_kinds()
        node = _Parser(DERIVED[name].definition, metrics, allow_derived=False).parse()
        _DERIVED_CACHE[name] = node
    return node


def parse(text: str, metrics: Mapping[str, MetricKind]) -> Node:
    """The syntax tree of ``text``; raises ``RuleSyntaxError`` with the position of the
    first problem (syntax, unknown name, wrong type, too deep)."""
    return _Parser(text, metrics, allow_derived=True).parse()
