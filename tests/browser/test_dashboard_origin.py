"""Real Chromium against a real dashboard: a page on another origin tries CSRF (a simple
fetch, a text/plain body, a form), WebSocket hijacking, and DNS rebinding (``evil.test``
mapped to 127.0.0.1 by ``--host-resolver-rules``). Each attack is also run against a
dashboard told to trust the attacker (the control): there it succeeds, so the refusal
seen by default is the guard's doing, not a broken attack page."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from otel_botmon.alerting.model import AlertSeverity, AlertType
from otel_botmon.monitor import MonitoringConfig
from tests.browser.conftest import CHROME_FLAGS
from tests.integration.dashboard.live_server import LiveDashboard
from tests.services import require_binary

pytestmark = pytest.mark.browser

ATTACK_JS = r"""
window.results = {};
async function attack(base, ids) {
  const r = window.results;
  try {
    await fetch(base + "/api/alerts/" + ids.fetch + "/resolve", {method: "POST", mode: "no-cors"});
  } catch (e) { r.fetchError = String(e); }
  try {
    await fetch(base + "/api/alerts/" + ids.plain + "/acknowledge", {
      method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
      body: JSON.stringify({user: "evil"})});
  } catch (e) { r.plainError = String(e); }
  try {  // preflighted: the dashboard never answers a preflight, so it is never sent
    await fetch(base + "/api/alerts/" + ids.json + "/acknowledge", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({user: "evil"})});
  } catch (e) { r.jsonError = String(e); }
  await new Promise(function (done) {
    const frame = document.createElement("iframe");
    frame.name = "sink";
    document.body.appendChild(frame);
    const form = document.createElement("form");
    form.method = "POST"; form.target = "sink";
    form.action = base + "/api/alerts/" + ids.form + "/resolve";
    document.body.appendChild(form);
    frame.onload = done;
    form.submit();
  });
  r.ws = await new Promise(function (done) {
    const ws = new WebSocket(base.replace("http", "ws") + "/ws");
    ws.onmessage = function (e) { ws.close(); done(e.data.length); };
    ws.onerror = function () { done(-1); };
    ws.onclose = function () { done(-1); };
  });
  window.done = true;
}
"""


class _AttackSite:
    """The attacker's own web server (another port, so another origin)."""

    def __init__(self) -> None:
        page = f"<!doctype html><html><body><script>{ATTACK_JS}</script></body></html>"

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = page.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _AttackSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def rebinding_browser() -> Iterator[Any]:
    """Headless Chromium in which ``evil.test`` resolves to 127.0.0.1."""
    chromium = require_binary("chromium", "/usr/bin/chromium")
    driver_path = require_binary("chromedriver", "/usr/bin/chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="botmon-chrome-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--host-resolver-rules=MAP evil.test 127.0.0.1")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _config() -> MonitoringConfig:
    return MonitoringConfig(metrics_collection_interval=0.5, alert_check_interval=0.5,
                            health_check_interval=60.0, default_alert_rules=False)


def _alerts(live: LiveDashboard, n: int) -> list[str]:
    return [live.call(live.monitor.create_custom_alert(
        title=f"a{i}", message="m", severity=AlertSeverity.WARNING,
        alert_type=AlertType.TRADING)) for i in range(n)]


def _wait_done(browser: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while not browser.execute_script("return window.done === true"):
        assert time.monotonic() < deadline, "the attack page never finished"
        time.sleep(0.05)
    return dict(browser.execute_script("return window.results"))


@pytest.mark.parametrize("trusted", [False, True], ids=["default", "control-trusted"])
def test_a_page_on_another_origin_can_neither_act_nor_read(
    rebinding_browser: Any, trusted: bool,
) -> None:
    with _AttackSite() as site:
        attacker = f"http://evil.test:{site.port}"
        options = {"allowed_origins": [attacker]} if trusted else {}
        with LiveDashboard(_config(), **options) as live:
            ids = dict(zip(("fetch", "plain", "json", "form"), _alerts(live, 4), strict=True))
            rebinding_browser.get(attacker + "/")
            rebinding_browser.execute_script(
                "attack(arguments[0], arguments[1])", live.url, ids)
            results = _wait_done(rebinding_browser)
            state = {k: live.monitor.get_alert(v) for k, v in ids.items()}
    # text/plain bodies are refused even from a trusted origin; a preflighted request
    # is never sent (no CORS answer), trusted or not
    assert not state["plain"]["acknowledged"] and not state["json"]["acknowledged"]
    if trusted:
        assert state["fetch"]["state"] == "resolved" and state["form"]["state"] == "resolved"
        assert results["ws"] > 0, results
    else:
        assert state["fetch"]["state"] == "firing", results
        assert state["form"]["state"] == "firing", results
        assert results["ws"] == -1, results  # no byte of the dashboard reached the page


@pytest.mark.parametrize("trusted", [False, True], ids=["default", "control-trusted"])
def test_dns_rebinding_name_gets_nothing(rebinding_browser: Any, trusted: bool) -> None:
    options = {"allowed_hosts": ["evil.test"]} if trusted else {}
    with LiveDashboard(_config(), **options) as live:
        (alert_id,) = _alerts(live, 1)
        rebound = f"http://evil.test:{live.dashboard.port}"
        rebinding_browser.get(rebound + "/api/dashboard")
        text = rebinding_browser.find_element("tag name", "body").text
        # the rebound page is same-origin with the dashboard: only the Host check is left
        status = rebinding_browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {method: 'POST'}).then(r => done(r.status), e => done(-1));",
            f"{rebound}/api/alerts/{alert_id}/resolve")
        state = live.monitor.get_alert(alert_id)["state"]
    if trusted:
        assert "alerts" in json.loads(text) and status == 200 and state == "resolved"
    else:
        assert json.loads(text)["error"] == "forbidden_host"
        assert status == 403 and state == "firing"


def test_the_same_origin_page_still_works(rebinding_browser: Any) -> None:
    with LiveDashboard(_config()) as live:
        (alert_id,) = _alerts(live, 1)
        rebinding_browser.get(live.url + "/")
        status = rebinding_browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {method: 'POST', headers: {'Content-Type': 'application/json'},"
            " body: JSON.stringify({user: 'me'})}).then(r => done(r.status), e => done(-1));",
            f"/api/alerts/{alert_id}/acknowledge")
        received = rebinding_browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "const ws = new WebSocket(location.origin.replace('http', 'ws') + '/ws');"
            "ws.onmessage = e => { ws.close(); done(e.data.length); };"
            "ws.onerror = () => done(-1);")
        acknowledged = live.monitor.get_alert(alert_id)["acknowledged"]
    assert status == 200 and acknowledged
    assert received > 0
