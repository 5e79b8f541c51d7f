"""Reading rule and rule-test YAML safely, keeping every value's position in the file.

PyYAML composes nested collections recursively, so a document nested 10,000 deep ends
in a ``RecursionError``; aliases can make a small file stand for a huge tree. Documents
are composed here with a nesting limit and a node budget, and walked as nodes (not
Python objects) so every error names ``file:line:column``.
"""

from __future__ import annotations

from typing import Any

import yaml

from otel_botmon._suggest import did_you_mean

__all__ = ["MAX_DEPTH", "MAX_NODES", "LimitError", "compose", "did_you_mean"]

MAX_DEPTH = 64
"""Deepest nesting of collections a rule or test file may have."""
MAX_NODES = 1_000_000
"""Most nodes (aliases counted each time they are used) in one file."""


class LimitError(yaml.MarkedYAMLError):
    """The document is nested too deeply or too large."""


class _LimitedLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        mark: Any = event.start_mark
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise LimitError(None, None, f"more than {MAX_NODES} values", mark)
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise LimitError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", mark
                )
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)


def compose(text: str) -> yaml.Node | None:
    """The node tree of the single YAML document ``text`` (None when empty).

    Raises ``yaml.MarkedYAMLError`` (with ``problem_mark``) for malformed YAML and for a
    document nested deeper than :data:`MAX_DEPTH` or larger than :data:`MAX_NODES`;
    never ``RecursionError``.
    """
    loader = _LimitedLoader(text)
    try:
        node: yaml.Node | None = loader.get_single_node()
        return node
    finally:
        loader.dispose()


def scalar_position(source: str, node: yaml.Node, offset: int) -> tuple[int, int]:
    """1-based line and column in ``source`` of character ``offset`` of the value of the
    scalar ``node``, whatever its style (plain, quoted with escapes, literal ``|`` or
    folded ``>`` block, indented or not).

    The value's characters other than whitespace appear in the source in the same order
    (folding turns line breaks into spaces, quoting adds escapes and indentation), so the
    non-blank characters up to ``offset`` are found one after the other in the source.
    """
    start, end = node.start_mark.index, node.end_mark.index
    value = str(node.value)
    offset = max(0, min(offset, len(value)))
    i = start
    style = getattr(node, "style", None)
    if style in ("'", '"'):
        i += 1  # past the opening quote
    elif style in ("|", ">"):
        newline = source.find("\n", i, end)
        i = end if newline < 0 else newline + 1  # content starts on the next line
    target = value[offset] if offset < len(value) else ""
    for ch in value[:offset]:
        if ch.isspace():
            if i < end and source[i] == ch:
                i += 1
            continue
        found = source.find(ch, i, end)
        if found < 0:
            return _line_col(source, i)
        i = found + 1
    if target and not target.isspace():
        found = source.find(target, i, end)
        if found >= 0:
            i = found
    return _line_col(source, min(i, len(source)))


def _line_col(source: str, index: int) -> tuple[int, int]:
    line = source.count("\n", 0, index) + 1
    column = index - (source.rfind("\n", 0, index) + 1) + 1
    return line, column
