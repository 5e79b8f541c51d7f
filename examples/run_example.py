"""Run a guide example whose snippet uses ``await`` at top level, as the guide writes it.

    python examples/run_example.py examples/custom_alerts.py

Plain scripts run too. The file is compiled with top-level ``await`` allowed and, if it
awaits, executed inside ``asyncio.run``.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import sys
from pathlib import Path
from typing import Any


def run_example(path: str | Path) -> dict[str, Any]:
    """Execute the example at ``path``; returns its globals."""
    source = Path(path).read_text(encoding="utf-8")
    code = compile(source, str(path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(path)}
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        asyncio.run(result)
    return namespace


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python examples/run_example.py EXAMPLE.py")
    run_example(sys.argv[1])
