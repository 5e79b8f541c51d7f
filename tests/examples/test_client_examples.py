"""The exchange-client examples run: ccxt (sync and async) and python-binance, against the
simulated exchange, in-process and against ``botmon demo --exchange-only``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.examples.test_guide_examples import _runner

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"


def test_ccxt_bot_example(capsys: pytest.CaptureFixture[str]) -> None:
    _runner()(EXAMPLES_DIR / "ccxt_bot.py")
    out = capsys.readouterr().out
    assert "sync: bought 0.001 BTC" in out
    assert "sync: order rejected: insufficient funds" in out
    assert "async: sold 0.5 ETH" in out
    assert "trades filled: 2" in out and "trades rejected: 1" in out
    assert "requests 400: 1" in out
    assert re.search(r"utilization spot 1m: 0\.\d+", out)


def test_python_binance_bot_example(capsys: pytest.CaptureFixture[str]) -> None:
    _runner()(EXAMPLES_DIR / "python_binance_bot.py")
    out = capsys.readouterr().out
    assert "sync: bought 0.002 BTC" in out
    assert "sync: order rejected: -2010" in out
    assert "async: sold 1 BNB" in out
    # ticker, account (inside an exchange_call: still one), order, async order; plus -2010
    assert "requests 200: 4" in out and "requests 400: 1" in out
    assert "trades filled: 2" in out and "trades rejected: 1" in out


@pytest.mark.slow
def test_examples_against_botmon_demo_exchange_only(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "otel_botmon.cli", "demo", "--exchange-only", "--port", "0"],
        stdout=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)", first)
        assert match, first
        env = {**os.environ, "BOTMON_EXCHANGE_URL": match.group(1)}
        for example in ("ccxt_bot.py", "python_binance_bot.py"):
            done = subprocess.run([sys.executable, str(EXAMPLES_DIR / example)], env=env,
                                  capture_output=True, text=True, timeout=120, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            assert "trades rejected: 1" in done.stdout
            assert "demo-api-secret" not in done.stdout + done.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
