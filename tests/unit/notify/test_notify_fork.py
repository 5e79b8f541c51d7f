"""A dispatcher forked while a delivery of the parent is in flight on another thread's
loop: the child's drain() must not be held by the parent's suspended worker."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import traceback

import pytest

from otel_botmon.alerting.model import NotificationChannel
from otel_botmon.notify import NotificationConfig, NotificationDispatcher
from otel_botmon.notify.base import DeliveryResult
from otel_botmon.notify.message import Notification
from tests.forking import guard_child, wait_child
from tests.unit.notify.fakes import FakeNotifier, make_notification

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

SLACK = NotificationChannel.SLACK


class Held(FakeNotifier):
    """Sends never finish in the parent: each waits on a future only its coroutine holds."""

    async def send(self, notification: Notification) -> DeliveryResult:
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")


def test_a_child_forked_amid_a_delivery_drains_its_own() -> None:
    dispatcher = NotificationDispatcher(
        NotificationConfig(console=False, group_wait=0.0), notifiers=[Held(SLACK)])
    sending, finish, finished = threading.Event(), threading.Event(), threading.Event()

    async def parent() -> None:
        await dispatcher.start()
        dispatcher.enqueue(make_notification(0, channels=[SLACK]))
        while not dispatcher._in_flight:
            await asyncio.sleep(0.001)
        sending.set()
        await asyncio.to_thread(finish.wait)
        await dispatcher.stop()  # cancels the held delivery
        finished.set()

    # the parent's loop is reachable from its thread only (the Thread object is not
    # kept here): gone in the child
    threading.Thread(target=asyncio.run, args=(parent(),), daemon=True).start()
    assert sending.wait(10)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            guard_child(20)
            gc.collect()  # frees what only the parent's thread held, unless kept

            async def child() -> None:
                dispatcher._notifiers["slack"] = FakeNotifier(SLACK)
                await dispatcher.start()
                dispatcher.enqueue(make_notification(1, channels=[SLACK]))
                assert await dispatcher.drain(5), f"in_flight={dispatcher._in_flight}"
                await dispatcher.stop()

            assert dispatcher._in_flight == 0, dispatcher._in_flight
            asyncio.run(child())
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    status = wait_child(pid, 30)
    finish.set()
    try:
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        assert finished.wait(10)
        dispatcher.close()
