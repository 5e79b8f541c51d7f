"""A forked child never runs the parent's other-thread coroutines' clean-up.

A task of an event loop that ran on another thread of the parent belongs to that
thread, which the child does not have. If an after-fork hook drops what the task waits
for (a component letting go of its handoff to a thread of its own), the task is freed
and its coroutine closed, so its ``finally`` blocks would run in the child, on the
child's state. Here a component of that kind is registered with the fork hooks, the
parent's task is inside a ``try/finally`` when the test forks, and the child collects
its garbage and reports what ran. A task of the loop the forking thread runs is the
child's: it goes on, and its clean-up runs, in the child.
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import os
import threading
import traceback
from pathlib import Path
from typing import Any

import pytest

from otel_botmon import _fork
from tests.forking import guard_child, run_child, wait_child

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]


class Handoff:
    """What a task waits for, held (as a queue to a worker thread would hold it) by a
    component that lets go of it in a forked child."""

    def __init__(self) -> None:
        self.waiting: list[asyncio.Future[None]] = []
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        self.waiting = []  # the parent's handoffs are the parent's


def _loops() -> list[Any]:
    factories: list[Any] = [pytest.param(asyncio.new_event_loop, id="asyncio")]
    try:
        import uvloop  # uvicorn[standard]'s loop, common in bots: it records no thread
    except ImportError:  # pragma: no cover - not installed
        return factories
    return [*factories, pytest.param(uvloop.new_event_loop, id="uvloop")]


@pytest.mark.parametrize("new_loop", _loops())
def test_a_task_of_another_threads_loop_is_kept_whole_in_the_child(
    tmp_path: Path, new_loop: Any,
) -> None:
    handoff = Handoff()
    ran: list[int] = []  # pids whose clean-up ran
    waiting, release = threading.Event(), threading.Event()

    async def delivery() -> None:
        future = asyncio.get_running_loop().create_future()
        handoff.waiting.append(future)
        try:
            await future
        finally:
            ran.append(os.getpid())

    async def parent() -> None:
        # only what the task waits for holds it (as a real handoff does): no name here
        done = asyncio.get_running_loop().create_future()
        asyncio.create_task(delivery()).add_done_callback(done.set_result)
        while not handoff.waiting:
            await asyncio.sleep(0)
        waiting.set()
        await asyncio.to_thread(release.wait)
        handoff.waiting[0].set_result(None)
        await done

    def serve() -> None:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            runner.run(parent())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert waiting.wait(10)
    report = tmp_path / "report"

    def child() -> None:
        logged = io.StringIO()
        handler = logging.StreamHandler(logged)
        logging.getLogger("asyncio").addHandler(handler)
        gc.collect()
        gc.collect()
        assert ran == [], f"the parent's finally ran in the child: {ran}"
        assert "destroyed" not in logged.getvalue(), logged.getvalue()
        # the child's own event loop works
        assert asyncio.run(asyncio.sleep(0, "ok")) == "ok"

    status = run_child(child, report)
    release.set()
    thread.join(10)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, \
        report.read_text() if report.exists() else status
    assert ran == [os.getpid()]  # the parent's clean-up ran once, in the parent


def test_a_fork_from_inside_a_running_loop_leaves_that_loops_tasks_to_the_child(
    tmp_path: Path,
) -> None:
    report = tmp_path / "report"
    ran: list[int] = []

    async def worker(gate: asyncio.Event) -> None:
        try:
            await gate.wait()
        finally:
            ran.append(os.getpid())

    async def main() -> int:
        gate = asyncio.Event()
        task = asyncio.create_task(worker(gate))
        await asyncio.sleep(0)  # the worker waits on the gate
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                guard_child(20)
                assert task not in _fork._kept_tasks
                gate.set()
                await task  # this loop is the child's: its task goes on here
                assert ran == [os.getpid()], ran
                code = 0
            except BaseException:
                report.write_text(traceback.format_exc())
            finally:
                os._exit(code)
        gate.set()
        await task
        return wait_child(pid, 30)

    status = asyncio.run(main())
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, \
        report.read_text() if report.exists() else status
    assert ran == [os.getpid()]

