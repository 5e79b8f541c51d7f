"""otel-botmon[all] next to the OTel contrib HTTP instrumentations a bot adds.

Each case resolves the package (built from this checkout) together with one contrib
instrumentation in a fresh virtual environment, from the package index, as a user's
installer would on the day of the lock: nothing published after the newest file in
``uv.lock`` enters (``--exclude-newer``, as ``scripts/check-floors``), so a release made
since cannot change the test command's outcome until the lock is bumped. The outcome
must be one of two, never a crash at start-up:

- the resolver refuses, naming the conflict (a contrib release built for an older SDK than
  our floor: the conflict is declared through the SDK's pinned semantic conventions), or
- it installs, ``pip check`` is clean, and ``configure()`` plus the instrumentor and a
  trade run in a new process.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import missing_service

REPO = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_SMOKE = """
import importlib, sys
import otel_botmon as botmon
from opentelemetry import metrics
module, cls = sys.argv[1], sys.argv[2]
tel = botmon.configure(service_name="compat-bot", bot_name="compat-1", exchange="binance")
getattr(importlib.import_module(module), cls)().instrument()
with botmon.trade(symbol="BTCUSDT", side="BUY", quantity=0.001, price=45000.0) as t:
    t.filled(price=45010.0, quantity=0.001)
names = {m.name for rm in tel.metric_reader.get_metrics_data().resource_metrics
         for sm in rm.scope_metrics for m in sm.metrics}
assert "botmon.trades" in names, names
tel.shutdown()
print("configure-ok")
"""

# (instrumentation, the library it instruments, its module, its instrumentor): a bot that
# adds an instrumentation has the library it instruments, and some releases import it
# when their module is imported (the aiohttp client's does) without requiring it
CONTRIB = [
    ("opentelemetry-instrumentation-requests", "requests",
     "opentelemetry.instrumentation.requests", "RequestsInstrumentor"),
    ("opentelemetry-instrumentation-aiohttp-client", "aiohttp",
     "opentelemetry.instrumentation.aiohttp_client", "AioHttpClientInstrumentor"),
    ("opentelemetry-instrumentation-httpx", "httpx",
     "opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor"),
]


def _lock_date() -> str:
    """The newest upload time in uv.lock (what the lock was resolved as of)."""
    times = re.findall(r'upload-time = "([^"]+)"', (REPO / "uv.lock").read_text())
    assert times, "uv.lock holds no upload-time"
    return max(times)


def _uv() -> str:
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(REPO / ".tools/uv/bin/uv")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    missing_service("uv (scripts/test installs it into .tools/uv)")
    raise AssertionError("unreachable")


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("package", "library", "module", "instrumentor"), CONTRIB,
                         ids=[c[0].rsplit("-", 1)[-1] for c in CONTRIB])
def test_resolves_with_contrib_instrumentation_or_refuses(
    tmp_path: Path, package: str, library: str, module: str, instrumentor: str
) -> None:
    uv = _uv()
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": str(venv)}
    env.pop("UV_PROJECT_ENVIRONMENT", None)
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)],
                   check=True, env=env, timeout=120)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [uv, "pip", "install", "-q", "--python", python, "--exclude-newer", _lock_date(),
         f"otel-botmon[all] @ {REPO.as_uri()}", package, library],
        capture_output=True, text=True, env=env, timeout=540,
    )
    if install.returncode != 0:
        # Refused: it must be the declared conflict, not a build or network failure.
        assert "No solution found" in install.stderr, install.stderr
        assert "opentelemetry-semantic-conventions" in install.stderr, install.stderr
        assert "otel-botmon" in install.stderr, install.stderr
        return
    check = subprocess.run([uv, "pip", "check", "--python", python],
                           capture_output=True, text=True, env=env, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    smoke = subprocess.run([python, "-c", _SMOKE, module, instrumentor], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "configure-ok" in smoke.stdout
