"""schemathesis over the dashboard's OpenAPI schema: no request makes it answer 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.monitor import MonitoringConfig

from .live_server import LiveDashboard

pytestmark = [
    pytest.mark.slow,
    # schemathesis 4 draws from `random` inside its strategies; not ours to fix
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]


@pytest.fixture
def api_schema() -> Iterator[Any]:
    config = MonitoringConfig(health_check_interval=5.0, default_alert_rules=False)
    with LiveDashboard(config) as live:
        # real alerts, so some generated ids and bodies reach the handlers' happy paths
        for title in ("Custom Trading Alert", "<img src=x onerror=alert(1)>"):
            live.call(live.monitor.create_custom_alert(title, "m", AlertSeverity.WARNING))
        yield schemathesis.openapi.from_url(f"{live.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_api_fail(case: Any) -> None:
    case.call_and_validate(checks=[not_a_server_error])
