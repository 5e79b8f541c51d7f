"""The dashboard page in headless Chromium: loads cleanly, shows data, acts, escapes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from otel_botmon.alerting.model import AlertSeverity, AlertType
from otel_botmon.monitor import MonitoringConfig
from tests.integration.dashboard.live_server import LiveDashboard

pytestmark = pytest.mark.browser

XSS_TITLE = '<img src=x onerror="document.body.dataset.pwned=1">'


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``predicate`` until truthy; the page re-renders on every push, so an element
    found a moment ago may be gone (stale): that counts as "not yet"."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except StaleElementReferenceException:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture
def live() -> Iterator[LiveDashboard]:
    config = MonitoringConfig(
        metrics_collection_interval=0.5, alert_check_interval=0.5, health_check_interval=5.0,
        default_alert_rules=False,
    )
    with LiveDashboard(config) as server:
        server.monitor.record_trade_execution("BTCUSDT", "BUY", 0.001, 45000.0, 250.0)
        yield server


def text(browser: Any, selector: str) -> str:
    found = browser.find_elements(By.CSS_SELECTOR, selector)
    return str(found[0].text) if found else ""


def click(browser: Any, selector: str) -> bool:
    found = browser.find_elements(By.CSS_SELECTOR, selector)
    if not found:
        return False
    found[0].click()
    return True


def click_until(browser: Any, selector: str, done: Callable[[], bool]) -> None:
    """Click ``selector`` until ``done()``: a push can re-render the row between finding
    the button and clicking it, and a click on the replaced button does nothing."""

    def attempt() -> bool:
        if done():
            return True
        click(browser, selector)
        time.sleep(0.2)
        return done()

    wait_for(attempt)


def severe_console_entries(browser: Any) -> list[dict[str, Any]]:
    return [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]


def test_page_loads_without_console_errors_and_shows_components(
    browser: Any, live: LiveDashboard, artifacts_dir: str,
) -> None:
    browser.get(live.url)
    wait_for(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))
    row = wait_for(lambda: browser.find_elements(
        By.CSS_SELECTOR, 'tr[data-component="system_resources"]'))
    assert "system_resources" in row[0].text
    wait_for(lambda: browser.find_element(By.ID, "connection").text == "live")
    overall = browser.find_element(By.ID, "overall").text
    assert overall.split(" · ")[0] in ("HEALTHY", "DEGRADED", "CRITICAL")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#chart-host polyline"))
    wait_for(lambda: text(browser, '[data-metric="total_trades"] .value') == "1")
    browser.save_screenshot(os.path.join(artifacts_dir, "dashboard.png"))
    assert severe_console_entries(browser) == []


def test_acknowledge_button_changes_the_alert_on_page_and_in_api(
    browser: Any, live: LiveDashboard,
) -> None:
    alert_id = live.call(live.monitor.create_custom_alert(
        "Custom Trading Alert", "Something important happened", AlertSeverity.WARNING,
        AlertType.TRADING,
    ))
    browser.get(live.url)
    selector = f'#firing li[data-alert-id="{alert_id}"]'
    # the first click asks for a name; the second acts as "dashboard"
    click_until(browser, f"{selector} .ack-btn",
                lambda: text(browser, f"{selector} .alert-state").startswith("ACK by dashboard"))
    assert not browser.find_element(By.CSS_SELECTOR, f"{selector} .ack-btn").is_enabled()
    alert = httpx.get(f"{live.url}/api/alerts").json()["alerts"][0]
    assert alert["id"] == alert_id and alert["acknowledged_by"] == "dashboard"
    browser.find_element(By.CSS_SELECTOR, f"{selector} .resolve-btn").click()
    history = f'#alerts tr[data-alert-id="{alert_id}"] .alert-state'
    browser.execute_script("document.getElementById('history-panel').open = true")
    wait_for(lambda: text(browser, history).startswith("resolved"))
    assert not browser.find_elements(By.CSS_SELECTOR, selector)
    assert httpx.get(f"{live.url}/api/alerts").json()["count"] == 0
    assert severe_console_entries(browser) == []


def test_html_in_an_alert_title_renders_as_text(
    browser: Any, live: LiveDashboard, artifacts_dir: str,
) -> None:
    alert_id = live.call(live.monitor.create_custom_alert(
        XSS_TITLE, "<script>document.body.dataset.pwned=2</script>", AlertSeverity.CRITICAL,
    ))
    browser.get(live.url)
    wait_for(lambda: text(browser, f'#firing li[data-alert-id="{alert_id}"] .title') == XSS_TITLE)
    assert XSS_TITLE in text(browser, "#overall")
    assert browser.find_elements(By.CSS_SELECTOR, "main img, header img") == []
    assert browser.find_elements(By.CSS_SELECTOR, "main script") == []
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-pwned") is None
    browser.save_screenshot(os.path.join(artifacts_dir, "dashboard-escaped-alert.png"))
    assert severe_console_entries(browser) == []


def test_page_with_an_access_token_goes_live_and_acts(browser: Any) -> None:
    config = MonitoringConfig(health_check_interval=5.0, default_alert_rules=False)
    with LiveDashboard(config, access_token="page-token-42") as live:
        alert_id = live.call(live.monitor.create_custom_alert("Needs a token", "m"))
        browser.get(f"{live.url}/#token=page-token-42")
        wait_for(lambda: browser.find_element(By.ID, "connection").text == "live")
        assert "token" not in browser.current_url  # dropped from the address bar
        selector = f'#firing li[data-alert-id="{alert_id}"]'
        click_until(browser, f"{selector} .ack-btn",
                    lambda: "ACK by" in text(browser, f"{selector} .alert-state"))
        assert live.monitor.get_alert(alert_id)["acknowledged_by"] == "dashboard"
        assert severe_console_entries(browser) == []


def test_events_button_shows_the_alert_history_as_text(browser: Any, live: LiveDashboard) -> None:
    alert_id = live.call(live.monitor.create_custom_alert("With history", "m"))
    live.call(live.monitor.acknowledge_alert(alert_id, "<b>ann</b>"))
    browser.get(live.url)
    selector = f'#firing li[data-alert-id="{alert_id}"]'
    click_until(browser, f"{selector} .details-btn",
                lambda: "acknowledged by <b>ann</b>" in text(browser, f"{selector} .events"))
    wait_for(lambda: "fired" in text(browser, f"{selector} .events"))
    assert browser.find_elements(By.CSS_SELECTOR, f"{selector} .events b") == []
    assert severe_console_entries(browser) == []


def test_markup_in_health_labels_and_silences_is_text_and_odd_numbers_do_not_stop_the_page(
    browser: Any, live: LiveDashboard,
) -> None:
    from otel_botmon.custom_metrics import Metric
    from otel_botmon.observe.health import HealthStatus

    async def check(_: Any) -> dict[str, Any]:
        return {"status": HealthStatus.DEGRADED, "message": XSS_TITLE,
                "metrics": {"ratio": float("nan"), "note": XSS_TITLE}}

    async def set_up() -> str:
        live.monitor.register_health_check("evil_check", check)
        await live.monitor.force_health_check()
        live.monitor.add_silence(['alertname="x"'], 600, comment=XSS_TITLE, created_by="<b>me</b>")
        return await live.monitor.create_custom_alert(
            "labelled", "m", AlertSeverity.CRITICAL,
            labels={"desk": XSS_TITLE, "<svg onload=document.body.dataset.pwned=3>": "v"})

    alert_id = live.call(set_up())
    collector = live.monitor.performance_monitor.metrics_collector
    collector.register_metric(Metric(name="huge_total", metric_type="counter"))
    for _ in range(2):
        collector.record_metric("huge_total", 1e308)  # its running sum is inf
    browser.get(live.url)
    wait_for(lambda: text(browser, 'tr[data-component="evil_check"]'))
    assert XSS_TITLE in text(browser, 'tr[data-component="evil_check"]')
    wait_for(lambda: XSS_TITLE in text(browser, f'#firing li[data-alert-id="{alert_id}"]'))
    wait_for(lambda: browser.find_element(By.ID, "connection").text == "live")
    assert browser.find_elements(By.CSS_SELECTOR, "main img, main svg[onload], main b") == []
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-pwned") is None
    assert severe_console_entries(browser) == []
