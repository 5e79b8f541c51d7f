"""A damaged outbox row (a hand edit, a bad sector: text where a number belongs) is
skipped, counted and marked failed; it neither stops its destination's deliveries nor
is delivered again and again."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from otel_botmon.notify import NotificationConfig, NotificationDispatcher
from otel_botmon.notify.message import Notification
from otel_botmon.notify.outbox import FAILED
from tests.integration.notify.receivers import Receiver

NUMBERS = ("real", "integer")


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(column=st.sampled_from(["attempts", "next_attempt_at"]),
       value=st.one_of(st.text(max_size=20), st.binary(max_size=20)))
@example(column="next_attempt_at", value="garbage")
@example(column="attempts", value="garbage")
@example(column="attempts", value=b"\x00\xff")
async def test_a_damaged_outbox_row_is_skipped_and_the_rest_delivered_once(
    tmp_path_factory: object, webhook_receiver: Receiver, column: str, value: object,
) -> None:
    db = Path(tmp_path_factory.mktemp("outbox")) / "alerts.db"  # type: ignore[attr-defined]
    webhook_receiver.requests.clear()
    config = NotificationConfig(console=False, webhook_urls=[f"{webhook_receiver.url}/hook"],
                                outbox_path=str(db), retry_initial_delay=0.05,
                                retry_max_delay=0.2)
    first = NotificationDispatcher(config)
    for i in range(3):
        first.enqueue(Notification(alert_id=f"a{i}", title=f"a{i}"))
    assert first.wait_committed(10)
    first.close()
    conn = sqlite3.connect(db)
    conn.execute(f"UPDATE notify_outbox SET {column} = ? WHERE alert_id = 'a0'", (value,))
    kind = conn.execute(f"SELECT typeof({column}) FROM notify_outbox WHERE alert_id = 'a0'"
                        ).fetchone()[0]
    conn.commit()
    conn.close()
    damaged = kind not in NUMBERS  # SQLite keeps "7" as the number 7

    dispatcher = NotificationDispatcher(config)
    await dispatcher.start()
    try:
        assert await dispatcher.drain(20)
    finally:
        await dispatcher.stop()
    delivered = Counter(r.json()["alert_id"] for r in webhook_receiver.requests)
    try:
        if damaged:
            assert delivered == {"a1": 1, "a2": 1}
            assert dispatcher.outbox.skipped_rows == 1
            with dispatcher.outbox.store.connection() as conn:  # kept, out of the queue
                assert conn.execute("SELECT state FROM notify_outbox WHERE alert_id = 'a0'"
                                    ).fetchone() == (FAILED,)
        else:
            assert delivered == {"a0": 1, "a1": 1, "a2": 1}
            assert dispatcher.outbox.skipped_rows == 0
    finally:
        dispatcher.close()
