"""Fixtures for the fleet tests: bot subprocesses, Prometheus and VictoriaMetrics."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import LOOPBACK, ManagedProcess, free_port, require_binary

REPO_ROOT = Path(__file__).resolve().parents[3]
BOT_SCRIPT = Path(__file__).with_name("bot_process.py")

StartBot = Callable[..., ManagedProcess]


def wait_for_log(process: ManagedProcess, text: str, timeout: float = 20.0) -> None:
    """Return once ``text`` appears in the process log; fail with the log otherwise."""
    deadline = time.monotonic() + timeout
    while text not in process.log():
        if not process.running():
            raise AssertionError(f"process exited before printing {text!r}:\n{process.log()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} within {timeout}s:\n{process.log()}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def start_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartBot]:
    """Start ``bot_process.py`` with the given options; waits for READY; stops at teardown
    of the test module (module scope: a module's tests share their slow servers)."""
    started: list[ManagedProcess] = []
    tmp_path = tmp_path_factory.mktemp("bots")

    def start(
        name: str = "bot-1", *, extra_env: dict[str, str] | None = None, **options: Any
    ) -> ManagedProcess:
        args = [sys.executable, str(BOT_SCRIPT), "--bot-name", name]
        for key, value in options.items():
            if value is not None:
                args += [f"--{key.replace('_', '-')}", str(value)]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(extra_env or {})}
        for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_SDK_DISABLED",
                    "OTEL_RESOURCE_ATTRIBUTES"):
            env.pop(var, None)
        process = ManagedProcess(args, tmp_path / f"{name}.log", env=env, cwd=tmp_path)
        started.append(process.start())
        wait_for_log(process, "READY")
        return process

    yield start
    for process in started:
        process.stop()


def prometheus_config(targets: list[str], rule_files: list[Path]) -> str:
    rules = "".join(f"  - {path}\n" for path in rule_files)
    target_list = ", ".join(f'"{t}"' for t in targets)
    return (
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n{rules or '  []'}\n"
        "scrape_configs:\n  - job_name: trading-bots\n    scrape_interval: 1s\n"
        f"    static_configs:\n      - targets: [{target_list}]\n"
    )


class Prometheus:
    def __init__(self, url: str, process: ManagedProcess) -> None:
        self.url = url
        self.process = process

    def query(self, expr: str) -> dict[str, Any]:
        """The JSON answer of an instant query (status and data), raising on HTTP errors."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body: dict[str, Any] = response.json()
        return body

    def label_values(self, label: str, selector: str | None) -> list[str]:
        params = {"match[]": selector} if selector else {}
        response = httpx.get(f"{self.url}/api/v1/label/{label}/values", params=params, timeout=10)
        response.raise_for_status()
        values: list[str] = response.json()["data"]
        return values


@pytest.fixture(scope="module")
def start_prometheus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Prometheus]]:
    """Start Prometheus scraping ``targets`` every second with ``rule_files`` loaded."""
    binary = require_binary("prometheus", "/usr/bin/prometheus")
    started: list[ManagedProcess] = []

    def start(targets: list[str], rule_files: Sequence[Path] = ()) -> Prometheus:
        workdir = tmp_path_factory.mktemp("prometheus")
        config = workdir / "prometheus.yml"
        config.write_text(prometheus_config(targets, list(rule_files)))
        port = free_port()
        process = ManagedProcess(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address={LOOPBACK}:{port}"],
            workdir / "prometheus.log",
        )
        url = f"http://{LOOPBACK}:{port}"
        started.append(process.start_ready(f"{url}/-/ready"))
        return Prometheus(url, process)

    yield start
    for process in started:
        process.stop()


class VictoriaMetrics:
    """A VictoriaMetrics server that can be stopped and started again on the same port."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.process = ManagedProcess(
            [binary, f"-httpListenAddr={LOOPBACK}:{self.port}",
             f"-storageDataPath={workdir / 'data'}", "-search.latencyOffset=0s",
             "-search.disableCache"],
            workdir / "victoria-metrics.log",
        )

    def start(self) -> VictoriaMetrics:
        self.process.start_ready(f"{self.url}/health")
        return self

    def stop(self) -> None:
        self.process.stop()

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query after making freshly written samples searchable."""
        httpx.get(f"{self.url}/internal/force_flush", timeout=10).raise_for_status()
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    binary = require_binary("victoria-metrics", "/usr/bin/victoria-metrics")
    workdir = tmp_path / "vm"
    workdir.mkdir()
    server = VictoriaMetrics(binary, workdir).start()
    yield server
    server.stop()
