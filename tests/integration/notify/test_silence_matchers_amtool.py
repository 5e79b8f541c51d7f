"""Differential: a silence matcher typed for amtool means the same value to botmon as to
Alertmanager 0.25 (``amtool silence add`` parses it; the silence is read back from
Alertmanager's API). Both accept with the same value, or both refuse."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_botmon.alerting.model import LabelMatcher
from tests.integration.fleet.alertmanager import Alertmanager, alertmanager_binary
from tests.integration.notify.conftest import _am_config
from tests.integration.notify.receivers import Receiver
from tests.services import require_binary

# what a value can be written with: quotes, backslashes, escape letters, line feeds
RAW = st.text(st.sampled_from(['"', "\\", "n", "d", ".", "a", " ", "\n", "\t", "é", ",", "'"]),
              max_size=8)


@pytest.fixture(scope="module")
def am_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = alertmanager_binary()
    hook = Receiver("webhook").start()
    node = Alertmanager(binary, tmp_path_factory.mktemp("am"), _am_config(hook.url)).start()
    try:
        yield node.url
    finally:
        node.stop()
        hook.stop()


def alertmanager_value(am_url: str, text: str) -> str | None:
    """The value Alertmanager keeps for matcher ``text`` (None: amtool refuses it)."""
    amtool = require_binary("amtool", "amtool")
    added = subprocess.run(
        [amtool, f"--alertmanager.url={am_url}", "silence", "add", "--duration=1h",
         "--comment=differential", "--author=test", 'alertname="x"', text],
        capture_output=True, text=True, timeout=30, check=False)
    if added.returncode != 0:
        return None
    silence_id = added.stdout.strip()
    silence = httpx.get(f"{am_url}/api/v2/silence/{silence_id}", timeout=10).json()
    httpx.delete(f"{am_url}/api/v2/silence/{silence_id}", timeout=10)
    (value,) = [m["value"] for m in silence["matchers"] if m["name"] == "lbl"]
    return str(value)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(RAW)
def test_botmon_reads_a_matcher_as_amtool_and_alertmanager_do(am_url: str, raw: str) -> None:
    text = f"lbl={raw}"
    expected = alertmanager_value(am_url, text)
    try:
        ours: str | None = LabelMatcher.parse(text).value
    except ValueError:
        ours = None
    assert ours == expected, text
