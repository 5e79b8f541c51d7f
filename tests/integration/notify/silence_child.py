"""Child process for the silence SIGKILL test: add and expire silences back to back.

Usage: python silence_child.py STORE_PATH
Prints ``ADDED <id>`` once ``add_silence()`` returned and ``EXPIRED <id>`` once
``remove_silence()`` returned (flushed at once, so the parent knows which calls
completed before the kill). Every second silence is expired right after it was added.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from otel_botmon.alerting.manager import AlertManager


async def _done(result: Any) -> Any:
    """The call's result, awaited when it is awaitable (older, write-behind versions
    returned at once: the test must be able to run against them and fail)."""
    return await result if inspect.isawaitable(result) else result


async def main(store: str) -> None:
    manager = AlertManager(store=store)
    print("READY", flush=True)
    i = 0
    while True:
        silence_id = await _done(manager.add_silence(
            {"alertname": f"a{i}"}, duration_s=3600, comment=f"silence {i}"))
        print("ADDED", silence_id, flush=True)
        if i % 2:
            assert await _done(manager.remove_silence(silence_id))
            print("EXPIRED", silence_id, flush=True)
        i += 1


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
