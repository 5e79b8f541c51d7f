"""The package's public face: __all__ lists exactly the public names it exposes."""

from __future__ import annotations

import subprocess
import sys
import types

import otel_botmon


def test_all_matches_the_public_names() -> None:
    public = {
        name for name, value in vars(otel_botmon).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
        and name not in {"annotations", "TYPE_CHECKING", "Any"}
    }
    lazy = set(otel_botmon._LAZY)  # imported on first use
    assert set(otel_botmon.__all__) == public | lazy | {"__version__"}
    assert lazy <= set(dir(otel_botmon))
    assert len(otel_botmon.__all__) == len(set(otel_botmon.__all__))


def test_every_exported_name_resolves() -> None:
    for name in otel_botmon.__all__:
        assert getattr(otel_botmon, name) is not None, name


def test_the_seed_guides_names_are_public() -> None:
    seed = {
        "SystemMonitor", "MonitoringConfig", "NotificationConfig", "MonitoringDashboard",
        "HealthChecker", "HealthStatus", "AlertSeverity", "AlertType", "AlertRule",
        "NotificationChannel", "Metric", "MetricType", "MetricCategory",
    }
    assert seed <= set(otel_botmon.__all__)


def test_importing_the_package_does_not_import_the_dashboard_stack() -> None:
    code = "import sys, otel_botmon; print('fastapi' in sys.modules, 'uvicorn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_importing_the_package_loads_what_the_decorators_need_and_no_more() -> None:
    code = (
        "import sys, otel_botmon\n"
        "heavy = ('otel_botmon.alerting', 'otel_botmon.notify', 'otel_botmon.dashboard', "
        "'otel_botmon.monitor', 'fastapi', 'uvicorn', 'httpx', 'aiohttp', 'requests', "
        "'yaml', 'sqlite3')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
        "print(otel_botmon.trade is not None and otel_botmon.configure is not None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"], out.stdout


def test_the_seed_imports_still_work_in_a_fresh_process() -> None:
    code = (
        "from otel_botmon import SystemMonitor, MonitoringConfig, NotificationConfig, "
        "HealthChecker, HealthStatus, AlertSeverity, AlertType, AlertRule, "
        "NotificationChannel, Metric, MetricType, MetricCategory\n"
        "import sys; print('otel_botmon.alerting.model' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.split() == ["True"]


def test_unknown_attribute_raises_attribute_error() -> None:
    try:
        otel_botmon.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_the_open_order_calls_are_public() -> None:
    orders = {"open_order", "order_filled", "order_rejected", "order_canceled",
              "set_order_limits", "expire_orders", "open_order_count", "OrderHandle"}
    assert orders <= set(otel_botmon.__all__)


def test_the_version_is_written_once_and_the_package_metadata_reads_it() -> None:
    from importlib.metadata import version
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    assert version("otel-botmon") == otel_botmon.__version__
    pyproject = (root / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert otel_botmon.__version__ not in pyproject  # hatch reads __about__.py
