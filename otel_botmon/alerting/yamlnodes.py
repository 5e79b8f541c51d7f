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

__all__ = [
    "MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES", "FileTooLargeError", "LimitError", "check_size",
    "compose", "did_you_mean", "read_text",
]

MAX_DEPTH = 64
"""Deepest nesting of collections a rule or test file may have."""
MAX_NODES = 1_000_000
"""Most nodes (aliases counted each time they are used) in one file."""
MAX_FILE_BYTES = 4 * 1024 * 1024
"""Largest rule or rule-test file read (4 MiB), checked before parsing. Prometheus sets
no limit, but rule files usually ship in Kubernetes ConfigMaps, which hold at most 1 MiB,
and the Prometheus Operator splits its rule ConfigMaps well below that; 4 MiB is tens
of thousands of rules. Parsing is linear in size (about 10 s per MiB with PyYAML's
pure-Python parser), so a file this size is refused at once instead of after minutes."""


class FileTooLargeError(ValueError):
    """A file larger than :data:`MAX_FILE_BYTES`; the message names the file and the
    limit (``reason`` is the message without the file name)."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.reason = (
            f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB ({MAX_FILE_BYTES} bytes), "
            "the limit for a rule or rule-test file; split its groups over several files"
        )
        super().__init__(f"{filename}: {self.reason}")


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


def read_text(filename: str) -> str:
    """The UTF-8 text of ``filename``, reading at most :data:`MAX_FILE_BYTES` + 1 bytes
    (a special file that never ends cannot hold us either).

    Raises ``OSError`` or ``UnicodeDecodeError`` when it cannot be read, and
    :class:`FileTooLargeError` when it is too large.
    """
    with open(filename, "rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise FileTooLargeError(filename)
    return data.decode("utf-8")


def check_size(text: str, filename: str) -> None:
    """:class:`FileTooLargeError` when ``text`` encodes to more than
    :data:`MAX_FILE_BYTES` bytes of UTF-8."""
    if len(text) * 4 > MAX_FILE_BYTES and (
        len(text) > MAX_FILE_BYTES
        or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES
    ):
        raise FileTooLargeError(filename)


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
