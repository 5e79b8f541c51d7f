"""``botmon demo``: a simulated exchange, a bot trading on it, the monitor and the dashboard."""

from otel_botmon.demo.runner import DemoOptions, DemoResult, run_demo

__all__ = ["DemoOptions", "DemoResult", "run_demo"]
