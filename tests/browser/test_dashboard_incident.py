"""The 3 a.m. test in real Chromium at 1440x900 and 390x844: what is firing is on screen
first, a dead server is unmissable, ghosts never appear, actions work from the page."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from otel_botmon import cli
from otel_botmon import conventions as conv
from otel_botmon.alerting.model import AlertRule, AlertSeverity, AlertType
from otel_botmon.instrument.ratelimit import record_ratelimit_headers
from otel_botmon.instrument.trading import record_position_closed, trade
from otel_botmon.monitor import MonitoringConfig
from tests.integration.dashboard.live_server import LiveDashboard

from .test_dashboard_browser import click_until, severe_console_entries, text, wait_for

pytestmark = pytest.mark.browser

VIEWPORTS = {"desktop": (1440, 900), "mobile": (390, 844)}
GAUGE = conv.EXCHANGE_RATELIMIT_USED.name


@pytest.fixture
def live() -> Iterator[LiveDashboard]:
    config = MonitoringConfig(
        metrics_collection_interval=0.5, alert_check_interval=0.5, health_check_interval=5.0,
        default_alert_rules=False,
    )
    with LiveDashboard(config) as server:
        server.monitor.record_trade_execution("BTCUSDT", "BUY", 0.001, 45000.0, 250.0)
        yield server


def set_viewport(browser: Any, size: tuple[int, int]) -> None:
    """Make the page's viewport (not the window) exactly ``size`` CSS pixels."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": size[0], "height": size[1], "deviceScaleFactor": 1,
        "mobile": size[0] < 600,
    })


def gauge(value: float) -> None:
    """Binance's used-weight header, as a bot's HTTP client would see it."""
    record_ratelimit_headers({"x-mbx-used-weight-1m": str(int(value))}, exchange="binance")


def incident(live: LiveDashboard) -> str:
    """A critical incident with two more alerts; returns the critical alert's id."""
    call = live.call
    for n in range(3):  # the other views have content too (widths are checked on all of it)
        with trade(symbol="BTCUSDT", side="SELL", quantity=0.25, price=45000.0) as t:
            t.filled(price=44990.0 - n, quantity=0.25)
        record_position_closed("BTCUSDT" if n else "ETHUSDT", 12.5 - 20 * n)
    gauge(1150)
    call(live.monitor.add_silence(
        ['alertname="a_rather_long_alert_name_for_a_narrow_phone"'], 3600,
        comment="a comment that is long enough to need wrapping on a phone"))
    call(live.monitor.create_custom_alert("Exchange API degraded", "p95 above 2 s",
                                          AlertSeverity.WARNING, AlertType.API,
                                          labels={"exchange": "binance"}))
    call(live.monitor.create_custom_alert("Losing streak", "4 losses in a row",
                                          AlertSeverity.WARNING, AlertType.TRADING,
                                          labels={"symbol": "ETHUSDT"}))
    return call(live.monitor.create_custom_alert(
        "Trading engine stalled", "no heartbeat for 45 s", AlertSeverity.CRITICAL,
        AlertType.HEALTH, labels={"bot": "demo", "symbol": "BTCUSDT", "exchange": "binance"},
    ))


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_firing_alert_is_on_screen_first_and_the_page_fits(
    browser: Any, live: LiveDashboard, viewport: str, artifacts_dir: str,
) -> None:
    critical = incident(live)
    size = VIEWPORTS[viewport]
    set_viewport(browser, size)
    browser.get(live.url)
    title = f'#firing li[data-alert-id="{critical}"] .title'
    wait_for(lambda: text(browser, title) == "Trading engine stalled")
    box = browser.execute_script(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return {top: r.top, bottom: r.bottom, vh: innerHeight, sy: scrollY};", title)
    assert box["sy"] == 0 and box["top"] >= 0 and box["bottom"] <= box["vh"], box
    badge = text(browser, "#overall")
    assert badge == "CRITICAL · Trading engine stalled (+2)"
    assert browser.title.startswith(badge)
    widths = browser.execute_script(
        "return [document.documentElement.scrollWidth, innerWidth]")
    assert widths[0] <= widths[1], widths
    # firing first by severity: the critical one leads the list
    first = browser.find_elements(By.CSS_SELECTOR, "#firing > li")[0]
    assert first.get_attribute("data-alert-id") == critical
    age = first.find_element(By.CSS_SELECTOR, ".age")
    assert age.text.startswith("for ") and "UTC" in (age.get_attribute("title") or "")
    assert "symbol=BTCUSDT" in first.find_element(By.CSS_SELECTOR, ".labels").text
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#chart-host polyline"))
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#trades tbody tr")) == 4)
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#ratelimits tbody tr"))
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#silences > li"))
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#pnl > li")) == 2)
    browser.execute_script("document.getElementById('history-panel').open = true")
    widths = browser.execute_script(
        "return [document.documentElement.scrollWidth, innerWidth]")
    assert widths[0] <= widths[1], widths  # with every view filled and history open
    browser.execute_script("document.getElementById('history-panel').open = false")
    browser.save_screenshot(os.path.join(artifacts_dir, f"incident-{size[0]}x{size[1]}.png"))
    assert severe_console_entries(browser) == []


def test_a_pending_alert_that_clears_is_shown_apart_then_gone_everywhere(
    browser: Any, live: LiveDashboard, capsys: pytest.CaptureFixture[str],
) -> None:
    live.monitor.alert_manager.register_rule(AlertRule(
        "weight_high", f"{GAUGE} > 100", severity=AlertSeverity.WARNING, for_=3600,
        description="Rate-limit weight high"))
    gauge(500)
    browser.get(live.url)
    pending = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#pending > li"))
    alert_id = pending[0].get_attribute("data-alert-id")
    assert browser.find_elements(By.CSS_SELECTOR, "#firing > li") == []
    assert text(browser, '[data-severity="warning"]') == "0"  # tiles count firing only
    assert pending[0].find_elements(By.CSS_SELECTOR, ".ack-btn") == []  # not offered
    gauge(0)
    wait_for(lambda: not browser.find_elements(By.CSS_SELECTOR, f'[data-alert-id="{alert_id}"]'))
    everything = httpx.get(f"{live.url}/api/alerts", params={"state": "all"}).json()
    assert alert_id not in [a["id"] for a in everything["alerts"]]
    assert httpx.get(f"{live.url}/api/alerts").json()["count"] == 0
    for argv in (["alerts", "list", "--all", "--wide"], ["alerts", "list", "--pending"]):
        assert cli.main([*argv, "--url", live.url]) == 0
        assert alert_id[:8] not in capsys.readouterr().out
    assert httpx.post(f"{live.url}/api/alerts/{alert_id}/acknowledge").status_code == 404
    assert severe_console_entries(browser) == []


def test_rate_limit_rows_are_coloured_by_the_rules_that_alert_on_them(
    browser: Any, live: LiveDashboard,
) -> None:
    """A row turns amber when a warning rule on its gauge holds and red when a critical one
    does, as the alerts fire; not at the page's own 70 % / 90 %."""
    utilization = conv.EXCHANGE_RATELIMIT_UTILIZATION.name
    for name, severity, threshold in (("budget_warm", AlertSeverity.WARNING, 0.1),
                                      ("budget_hot", AlertSeverity.CRITICAL, 0.5)):
        live.monitor.alert_manager.register_rule(AlertRule(
            name, f"{utilization} > {threshold}", severity=severity, description=name))
    row = '#ratelimits tbody tr'

    def level() -> str:
        return str(browser.execute_script(
            "const r = Array.from(document.querySelectorAll(arguments[0]))"
            ".find(tr => tr.cells[2].textContent === '1m'); return r ? r.className : ''", row))

    def firing() -> set[str]:
        return {a["rule_name"] for a in live.monitor.get_active_alerts()
                if a["state"] == "firing"}

    gauge(1150)  # 19 % of Binance's 6,000 a minute: only the warning rule holds
    browser.get(live.url)
    wait_for(lambda: level() == "rl warn")
    wait_for(lambda: firing() == {"budget_warm"})
    legend = browser.execute_script(
        "return document.querySelector(arguments[0] + ' td:nth-child(4)').title", row)
    assert "budget_warm utilization > 0.1 (warning)" in legend, legend
    assert "budget_hot utilization > 0.5 (critical)" in legend, legend
    gauge(4000)  # 67 %: under the page's old 70 % line, over the critical rule's
    wait_for(lambda: level() == "rl crit")
    wait_for(lambda: firing() == {"budget_warm", "budget_hot"})
    gauge(60)  # 1 %: neither rule holds
    wait_for(lambda: level() == "rl ok")
    assert severe_console_entries(browser) == []


def test_what_is_left_of_a_rate_limit_is_shown(browser: Any, live: LiveDashboard) -> None:
    """HTX reports only what is left of an endpoint: its row shows it in "Left" (the
    remaining gauge had no place on the page, so the row did not exist)."""
    record_ratelimit_headers({"X-HB-RateLimit-Requests-Remain": "3"}, exchange="htx",
                             path="/v1/order/orders/place")
    browser.get(live.url)

    def htx_row() -> list[str]:
        return list(browser.execute_script(
            "const r = Array.from(document.querySelectorAll('#ratelimits tbody tr'))"
            ".find(tr => tr.cells[0].textContent === 'htx');"
            "return r ? Array.from(r.cells).map(c => c.dataset.label + '=' + c.textContent)"
            " : []"))

    wait_for(htx_row)
    row = htx_row()
    assert "Left=3" in row and "Retry after=\u2013" in row, row  # an en dash: no wait
    assert severe_console_entries(browser) == []


def test_stopping_the_server_shows_the_stale_banner(
    browser: Any, artifacts_dir: str,
) -> None:
    config = MonitoringConfig(metrics_collection_interval=0.5, alert_check_interval=0.5,
                              health_check_interval=5.0, default_alert_rules=False)
    with LiveDashboard(config) as live:
        browser.get(live.url)
        wait_for(lambda: text(browser, "#connection") == "live")
        banner = browser.find_element(By.ID, "stale-banner")
        assert not banner.is_displayed()
        live.call(live.dashboard.stop())
        wait_for(lambda: banner.is_displayed(), timeout=5.0)
        assert "Connection to the bot lost" in banner.text and " old" in banner.text
        assert "stale" in (browser.find_element(By.TAG_NAME, "body").get_attribute("class") or "")
        assert text(browser, "#connection") == "disconnected"
        # the header says how old the data is, and the uptime clock has stopped
        uptime = text(browser, "#uptime")
        updated = text(browser, "#updated")
        assert re.fullmatch(r"updated \d+s ago", updated), updated
        wait_for(lambda: text(browser, "#updated") not in ("", updated), timeout=5.0)
        assert text(browser, "#uptime") == uptime
        browser.save_screenshot(os.path.join(artifacts_dir, "stale.png"))


def test_a_hung_server_with_its_socket_open_also_shows_the_banner(
    browser: Any, live: LiveDashboard,
) -> None:
    import threading

    browser.get(live.url)
    wait_for(lambda: text(browser, "#connection") == "live")
    banner = browser.find_element(By.ID, "stale-banner")
    release = threading.Event()
    # the server's event loop stops answering (a blocked bot), the TCP socket stays open
    live.loop.call_soon_threadsafe(lambda: release.wait(60))
    try:
        wait_for(lambda: banner.is_displayed(), timeout=40.0)
        assert text(browser, "#connection") == "live"  # the socket itself never closed
    finally:
        release.set()
    wait_for(lambda: not banner.is_displayed(), timeout=40.0)  # and it recovers


def test_rows_are_updated_in_place_and_acknowledge_names_who(
    browser: Any, live: LiveDashboard,
) -> None:
    alert_id = live.call(live.monitor.create_custom_alert("In place", "m"))
    browser.get(live.url)
    selector = f'#firing li[data-alert-id="{alert_id}"]'
    row = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, selector))[0]
    browser.execute_script("arguments[0].dataset.mark = 'kept'", row)
    browser.execute_script(  # the trader selects the title to copy it
        "const r = document.createRange(); r.selectNodeContents(arguments[0]);"
        "getSelection().removeAllRanges(); getSelection().addRange(r);",
        row.find_element(By.CSS_SELECTOR, ".title"))
    live.call(live.monitor.create_custom_alert("Another one", "m", AlertSeverity.CRITICAL))
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#firing > li")) == 2)
    assert browser.find_element(By.CSS_SELECTOR, selector).get_attribute("data-mark") == "kept"
    assert browser.execute_script("return getSelection().toString()") == "In place"
    you = browser.find_element(By.ID, "you")
    you.send_keys("ann")
    browser.execute_script("arguments[0].dispatchEvent(new Event('change'))", you)
    note = browser.find_element(By.CSS_SELECTOR, f"{selector} .note")
    note.send_keys("restarting the feed")
    click_until(browser, f"{selector} .ack-btn",
                lambda: text(browser, f"{selector} .alert-state").startswith("ACK by ann"))
    button = browser.find_element(By.CSS_SELECTOR, f"{selector} .ack-btn")
    assert button.text == "Acknowledged" and not button.is_enabled()  # same slot, disabled
    assert browser.find_element(By.CSS_SELECTOR, selector).get_attribute("data-mark") == "kept"
    events = live.monitor.get_alert(alert_id, with_events=True)["events"]
    assert {"by": "ann", "note": "restarting the feed"} in [e["detail"] for e in events]
    assert browser.execute_script("return localStorage.getItem('botmon-user')") == "ann"
    assert severe_console_entries(browser) == []


def test_resolve_can_be_undone_before_it_is_sent(browser: Any, live: LiveDashboard) -> None:
    alert_id = live.call(live.monitor.create_custom_alert("Resolve me", "m"))
    browser.execute_script("1")  # a session exists before the page
    browser.get(live.url)
    browser.execute_script("localStorage.setItem('botmon-asked', '1')")
    selector = f'#firing li[data-alert-id="{alert_id}"]'
    resolve = f"{selector} .resolve-btn"
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, resolve))
    browser.find_element(By.CSS_SELECTOR, resolve).click()
    wait_for(lambda: text(browser, resolve).startswith("Undo"))
    browser.find_element(By.CSS_SELECTOR, resolve).click()  # undo
    wait_for(lambda: text(browser, resolve) == "Resolve")
    assert live.monitor.get_alert(alert_id)["state"] == "firing"
    browser.find_element(By.CSS_SELECTOR, resolve).click()
    wait_for(lambda: live.monitor.get_alert(alert_id)["state"] == "resolved", timeout=30)
    wait_for(lambda: not browser.find_elements(By.CSS_SELECTOR, selector))
    events = live.monitor.get_alert(alert_id, with_events=True)["events"]
    assert [e["detail"]["by"] for e in events if e["kind"] == "resolved"] == ["dashboard"]


def test_silences_are_created_listed_and_expired_from_the_page(
    browser: Any, live: LiveDashboard,
) -> None:
    browser.get(live.url)
    wait_for(lambda: text(browser, "#connection") == "live")
    browser.find_element(By.ID, "silence-matchers").send_keys('alertname="high_cpu_usage" bot=demo')
    browser.find_element(By.ID, "silence-comment").send_keys("deploy")
    browser.find_element(By.CSS_SELECTOR, "#silence-form button").click()
    item = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#silences > li"))[0]
    assert 'alertname="high_cpu_usage", bot="demo"' in item.text and "deploy" in item.text
    (silence,) = live.monitor.get_silences()
    assert silence["created_by"] == "dashboard"
    item.find_element(By.CSS_SELECTOR, ".expire-btn").click()
    wait_for(lambda: not browser.find_elements(By.CSS_SELECTOR, "#silences > li"))
    assert live.monitor.get_silences() == []


def test_charts_have_time_axis_threshold_spans_tooltip_and_runbook_link(
    browser: Any, live: LiveDashboard, artifacts_dir: str,
) -> None:
    live.monitor.alert_manager.register_rule(AlertRule(
        "weight_critical", f"{GAUGE} > 100", severity=AlertSeverity.CRITICAL,
        description="Rate-limit weight critical",
        annotations={"runbook_url": "https://runbooks.example/weight"}))
    live.monitor.alert_manager.register_rule(AlertRule(
        "weight_sneaky", f"{GAUGE} > 200", severity=AlertSeverity.WARNING,
        annotations={"runbook_url": "javascript:document.body.dataset.pwned=1"}))
    live.monitor.alert_manager.register_rule(AlertRule(
        "cpu_high", "cpu > 95", severity=AlertSeverity.WARNING, for_=3600))
    gauge(500)
    set_viewport(browser, VIEWPORTS["desktop"])
    browser.get(live.url)
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#firing > li")) == 2)
    links = [a.get_attribute("href")
             for a in browser.find_elements(By.CSS_SELECTOR, "#firing a.runbook")]
    assert "https://runbooks.example/weight" in links
    assert not [h for h in links if h and not h.startswith("https://")]  # no javascript: link
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#chart-host polyline")) == 2)
    # the rule's threshold: a dashed line, or named at the top when far above the data
    wait_for(lambda: "cpu_high > 95" in text(browser, "#chart-host .threshold-label"))
    labels = browser.execute_script(  # one read: the chart redraws as data arrives
        "return Array.from(document.querySelectorAll('#chart-host text'), t => t.textContent)")
    assert any(label.endswith("UTC · last " + label.split("last ")[-1]) for label in labels)
    ticks = browser.execute_script(
        "return Array.from(document.querySelectorAll('#chart-host text'))"
        ".filter(t => t.getAttribute('text-anchor') === 'end' && !t.classList.length)"
        ".map(t => t.textContent)")
    assert len(ticks) == len(set(ticks)) >= 3, ticks  # no "0.0 / 0.0" repeats
    font = browser.execute_script(
        "return parseFloat(getComputedStyle(document.querySelector('#chart-host text')).fontSize)"
        " * document.querySelector('#chart-host').getBoundingClientRect().width"
        " / document.querySelector('#chart-host').viewBox.baseVal.width")
    assert font >= 10.5  # labels are drawn at their CSS size, not scaled down
    chart = browser.find_element(By.ID, "chart-host")
    ActionChains(browser).move_to_element(chart).perform()
    wait_for(lambda: "UTC" in (tip := text(browser, "#chart-host .tip")) and "cpu:" in tip)
    browser.save_screenshot(os.path.join(artifacts_dir, "charts.png"))
    assert severe_console_entries(browser) == []


def test_every_kpi_card_names_its_window_and_unit(browser: Any, live: LiveDashboard) -> None:
    from otel_botmon.query import KPIS

    browser.get(live.url)
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#metrics .metric")) >= len(KPIS))
    windows = browser.execute_script(
        "return Object.fromEntries(Array.from(document.querySelectorAll('#metrics .metric'),"
        " m => [m.dataset.metric, m.querySelector('.window').textContent]))")
    expected = {"latest": "now", "since start": "since start"}
    for name, kpi in KPIS.items():
        assert windows[name].startswith(expected.get(kpi.window, "last " + kpi.window)), (
            name, windows[name])
    assert windows["pnl"].endswith("· quote ccy") and windows["total_trades"].endswith("· trades")


def test_a_rule_that_fired_is_shaded_on_its_chart(browser: Any, live: LiveDashboard) -> None:
    live.monitor.alert_manager.register_rule(AlertRule(
        "cpu_seen", "cpu >= 0", severity=AlertSeverity.CRITICAL, description="any CPU"))
    set_viewport(browser, VIEWPORTS["desktop"])
    browser.get(live.url)
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#chart-host rect.fired.critical"))
    wait_for(lambda: "cpu_seen >= 0" in browser.execute_script(
        "return Array.from(document.querySelectorAll('#chart-host .threshold-label'),"
        " t => t.textContent).join('|')"))
    assert severe_console_entries(browser) == []


def test_an_alert_on_a_kpi_shows_the_value_its_card_shows(
    browser: Any, live: LiveDashboard,
) -> None:
    """The firing alert of ``trade_latency_p95 > 100ms`` and the Trade p95 card show one
    number in one unit (the rule's value is in seconds, as the KPI is)."""
    live.monitor.alert_manager.register_rule(AlertRule(
        "trades_slow", "trade_latency_p95 > 100ms", severity=AlertSeverity.CRITICAL,
        description="Trades slow"))
    browser.get(live.url)

    def fired() -> list[Any]:
        live.monitor.record_trade_execution("BTCUSDT", "BUY", 0.001, 45000.0, 250.0)
        return browser.find_elements(By.CSS_SELECTOR, "#firing > li .value")

    wait_for(fired)

    def both() -> tuple[str, str] | None:
        shown = browser.execute_script(
            "const v = document.querySelector('#firing > li .value');"
            "const c = document.querySelector('[data-metric=\"trade_latency_p95\"] .value');"
            "return v && c ? [v.textContent, c.textContent] : null")
        return (shown[0], shown[1]) if shown else None

    alert_text, card = wait_for(lambda: (b := both()) and b[1] != "\u2013" and b)
    found = re.fullmatch(r"value ([\d,.]+ ms) \(> 100ms\)", alert_text)
    assert found, alert_text
    assert found.group(1) == card, (alert_text, card)  # e.g. "value 247.5 ms" and "247.5 ms"
    assert severe_console_entries(browser) == []


def test_without_javascript_the_page_says_so_and_claims_nothing(live: LiveDashboard) -> None:
    page = httpx.get(live.url).text
    assert "<noscript>" in page and "JavaScript is off" in page
    assert ">0<" not in page  # no count claims to be current
    for empty in re.findall(r'<p id="no-[a-z-]+"[^>]*>', page):  # nor any "No ... yet"
        assert " hidden" in empty, empty


def test_silence_button_silences_an_alert_whose_title_needs_escaping(
    browser: Any, live: LiveDashboard,
) -> None:
    """The button writes the matcher as Alertmanager does; JSON's escapes (\\t, \\u0001)
    are not Alertmanager's and would silence another text."""
    title = 'C:\\bot\t"feed"\u0001 \\d'
    alert_id = live.call(live.monitor.create_custom_alert(title, "m"))
    browser.execute_script("1")
    browser.get(live.url)
    browser.execute_script("localStorage.setItem('botmon-asked', '1')")
    button = f'#firing li[data-alert-id="{alert_id}"] .silence-btn'
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, button))
    browser.find_element(By.CSS_SELECTOR, button).click()
    (silence,) = wait_for(live.monitor.get_silences)
    assert silence["matchers"] == [{"name": "alertname", "op": "=", "value": title}]
