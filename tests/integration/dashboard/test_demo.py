"""`botmon demo` end to end, with every interval shortened by its time scale."""

from __future__ import annotations

import contextlib
import io
import re

import httpx
import pytest

from otel_botmon import cli
from otel_botmon.demo.runner import DemoOptions, run_demo
from otel_botmon.redaction import forget_secrets

API_KEY = "demoApiKeyAAAA1111BBBB2222CCCC"
API_SECRET = "demoApiSecretZZZZ9999YYYY8888XXXX7777"


@pytest.fixture(autouse=True)
def _forget_demo_secrets() -> None:
    yield
    forget_secrets()


@pytest.mark.slow
async def test_demo_fires_and_resolves_alerts_without_leaking_secrets() -> None:
    out = io.StringIO()
    options = DemoOptions(
        duration_s=12.0, port=0, open_browser=False, time_scale=0.2, progress_interval_s=1.0,
        seed=7, api_key=API_KEY, api_secret=API_SECRET,
    )
    result = await run_demo(options, out)
    text = out.getvalue()
    assert result.url in text
    assert result.trades > 10
    # an alert caused by an injected fault (not one of the start-up checks) came and went
    assert any(name.startswith("demo_") for name in result.fired_and_resolved), text
    assert "ALERT fired" in text and "ALERT resolved" in text
    assert result.dashboard_texts
    for body in [*result.dashboard_texts, text]:  # the pages and the demo's own output
        assert API_KEY not in body and API_SECRET not in body
        # every signature, not just one of them, is redacted
        assert set(re.findall(r"signature=([^&\s\"'<]*)", body)) <= {"REDACTED"}, body


async def test_exchange_answers_like_binance() -> None:
    from otel_botmon.demo.exchange import SimulatedExchange

    exchange = SimulatedExchange(API_KEY, API_SECRET, seed=1)
    await exchange.start()
    try:
        async with httpx.AsyncClient(base_url=exchange.base_url) as client:
            ping = await client.get("/api/v3/ping")
            assert ping.json() == {} and int(ping.headers["X-MBX-USED-WEIGHT-1M"]) >= 1
            assert "serverTime" in (await client.get("/api/v3/time")).json()
            unsigned = await client.post("/api/v3/order?symbol=BTCUSDT&side=BUY&quantity=1")
            assert unsigned.status_code == 401 and unsigned.json()["code"] == -2014
            bad = await client.post(
                "/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=00",
                headers={"X-MBX-APIKEY": API_KEY},
            )
            assert bad.status_code == 400 and bad.json()["code"] == -1022
            exchange.faults.rate_limited = True
            limited = await client.get("/api/v3/account?timestamp=1&signature=00",
                                       headers={"X-MBX-APIKEY": API_KEY})
            assert limited.status_code == 400  # the signature is checked before limits
    finally:
        await exchange.stop()


def test_cli_demo_prints_the_url_and_progress(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["demo", "--duration", "2", "--port", "0", "--no-browser",
                     "--time-scale", "0.2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "dashboard at http://localhost:" in out
    assert "phase:" in out and "demo stopped:" in out


def test_cli_demo_on_a_busy_port_says_so_first(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = cli.main(["demo", "--duration", "2", "--port", str(port), "--no-browser"])
    captured = capsys.readouterr()
    assert code == 2
    assert f"cannot start the demo on port {port}" in captured.err
    assert "demo stopped" not in captured.out and "Traceback" not in captured.err


@pytest.mark.parametrize(("variable", "value"), [
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "zipkin"),
])
def test_cli_demo_with_a_bad_otel_variable_names_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, variable: str,
    value: str,
) -> None:
    # before: the ValueError's traceback (the protocol) or a demo whose every export
    # failed in the log (the endpoint)
    monkeypatch.setenv(variable, value)
    code = cli.main(["demo", "--duration", "2", "--port", "0", "--no-browser"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith(f"botmon: {variable} must be") and value in captured.err
    assert "dashboard at" not in captured.out


@pytest.mark.parametrize("stop", ["duration", "sigint"])
async def test_demo_shutdown_with_a_tab_open_prints_no_traceback(stop: str) -> None:
    """A browser tab (WebSocket) and a poller are connected while the demo ends, by its
    duration or by Ctrl-C: stderr has no traceback (was ClientDisconnect in 2 of 6 runs)."""
    import asyncio
    import signal
    import subprocess
    import sys

    import websockets
    from websockets.typing import Origin

    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_botmon.cli", "demo", "--duration", "5", "--port", "0",
         "--no-browser", "--time-scale", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        found = None
        while found is None:
            line = await asyncio.to_thread(proc.stdout.readline)
            assert line, "the demo ended before printing its URL"
            found = re.search(r"http://localhost:(\d+)", line)
        origin = f"http://127.0.0.1:{found.group(1)}"
        async with websockets.connect(f"ws://127.0.0.1:{found.group(1)}/ws",
                                      origin=Origin(origin)) as ws, \
                httpx.AsyncClient(base_url=origin, timeout=5) as client:
            await ws.recv()  # the first snapshot: the tab is live
            if stop == "sigint":
                proc.send_signal(signal.SIGINT)
            with pytest.raises((httpx.TransportError, websockets.ConnectionClosed)):
                async with asyncio.timeout(30):
                    while True:  # until the server goes away under the tab
                        await client.get("/api/dashboard")
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(ws.recv(), 0.02)
        _out, err = await asyncio.to_thread(proc.communicate, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "Traceback" not in err and "ClientDisconnect" not in err, err
    assert proc.returncode == (0 if stop == "duration" else 130), err
