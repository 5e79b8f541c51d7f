"""Static checks of collector/otelcol.yaml: structure, known components, no inline secrets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

CONFIG_PATH = Path(__file__).resolve().parents[3] / "collector" / "otelcol.yaml"

# Component types the OpenTelemetry Collector contrib distribution ships, pinned to
# otelcol-contrib v0.114.0 (its builder manifest). A subset: the components a gateway
# for a bot fleet would use. Extend it from the manifest of the pinned version only.
CONTRIB_VERSION = "v0.114.0"
CONTRIB_COMPONENTS: dict[str, frozenset[str]] = {
    "receivers": frozenset({
        "otlp", "prometheus", "hostmetrics", "filelog", "kafka", "jaeger", "zipkin",
        "influxdb", "statsd", "httpcheck",
    }),
    "processors": frozenset({
        "batch", "memory_limiter", "resource", "attributes", "filter", "transform",
        "resourcedetection", "metricstransform", "cumulativetodelta", "deltatocumulative",
        "probabilistic_sampler", "tail_sampling", "redaction", "k8sattributes", "groupbyattrs",
    }),
    "exporters": frozenset({
        "otlp", "otlphttp", "debug", "nop", "file", "prometheus", "prometheusremotewrite",
        "influxdb", "kafka", "loadbalancing", "zipkin", "elasticsearch", "clickhouse",
    }),
    "extensions": frozenset({
        "health_check", "pprof", "zpages", "basicauth", "bearertokenauth", "headers_setter",
        "oauth2client", "file_storage",
    }),
    "connectors": frozenset({"forward", "count", "spanmetrics", "routing"}),
}
PIPELINE_SIGNALS = ("traces", "metrics", "logs")
SECRET_KEY = re.compile(r"token|password|secret|api[_-]?key|authorization|credential", re.I)
ENV_REF = re.compile(r"\$\{env:([A-Z_][A-Z0-9_]*)(:-[^}]*)?\}")
ONLY_ENV_REF = re.compile(r"^\$\{env:[A-Z_][A-Z0-9_]*\}$")


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded = yaml.safe_load(CONFIG_PATH.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _component_type(component_id: str) -> str:
    # "otlp/backend" is an instance named "backend" of type "otlp".
    return component_id.split("/", 1)[0]


def _scalars(node: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict):
        return [item for key, value in node.items() for item in _scalars(value, (*path, str(key)))]
    if isinstance(node, list):
        return [item for i, value in enumerate(node) for item in _scalars(value, (*path, str(i)))]
    return [(path, node)]


def test_config_parses_into_the_collector_sections(config: dict[str, Any]) -> None:
    assert {"receivers", "processors", "exporters", "service"} <= set(config)
    assert set(config["service"]["pipelines"]) == {"traces", "metrics", "metrics/prometheus"}


def test_every_component_type_ships_with_the_contrib_collector(config: dict[str, Any]) -> None:
    unknown = [
        f"{section}: {component_id}"
        for section, known in CONTRIB_COMPONENTS.items()
        for component_id in (config.get(section) or {})
        if _component_type(component_id) not in known
    ]
    assert not unknown, f"not in otelcol-contrib {CONTRIB_VERSION}: {unknown}"


def test_pipelines_reference_only_defined_components(config: dict[str, Any]) -> None:
    problems = []
    for name, pipeline in config["service"]["pipelines"].items():
        assert _component_type(name) in PIPELINE_SIGNALS, name
        for section in ("receivers", "processors", "exporters"):
            for component_id in pipeline.get(section, []):
                if component_id not in (config.get(section) or {}):
                    problems.append(f"pipeline {name}: {section[:-1]} {component_id} undefined")
        assert pipeline.get("receivers") and pipeline.get("exporters"), name
    for extension in config["service"].get("extensions", []):
        if extension not in (config.get("extensions") or {}):
            problems.append(f"service: extension {extension} undefined")
    assert not problems, problems


def test_gateway_has_the_required_pipeline_shape(config: dict[str, Any]) -> None:
    pipelines = config["service"]["pipelines"]
    assert set(config["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    for name, pipeline in pipelines.items():
        processors = pipeline["processors"]
        # memory_limiter must run first, batch last (collector guidance).
        assert processors[0] == "memory_limiter", name
        assert processors[-1] == "batch", name
        assert "resource" in processors, name
    assert {"influxdb", "otlphttp", "debug"} <= set(pipelines["metrics"]["exporters"])
    assert pipelines["metrics/prometheus"]["exporters"] == ["prometheusremotewrite"]
    assert {"otlphttp", "debug"} <= set(pipelines["traces"]["exporters"])
    environment = config["processors"]["resource"]["attributes"]
    assert any(a["key"].startswith("deployment.environment") for a in environment)


def test_no_secret_is_inline(config: dict[str, Any]) -> None:
    inline = [
        ".".join(path)
        for path, value in _scalars(config)
        if any(SECRET_KEY.search(part) for part in path)
        and not (isinstance(value, str) and ONLY_ENV_REF.match(value))
    ]
    assert not inline, f"secrets must be ${{env:VAR}} references without default: {inline}"


def test_exporter_endpoints_come_from_the_environment(config: dict[str, Any]) -> None:
    inline = [
        exporter_id
        for exporter_id, settings in config["exporters"].items()
        if isinstance(settings, dict) and "endpoint" in settings
        and not ONLY_ENV_REF.match(str(settings["endpoint"]))
    ]
    assert not inline, inline


def test_the_raw_file_contains_no_credential_looking_literal() -> None:
    text = CONFIG_PATH.read_text()
    without_refs = ENV_REF.sub("", text)
    assert not re.search(r"(?i)bearer\s+\w|token\s+\w{8,}|://[^/\s:@]+:[^/\s@]+@", without_refs)


def test_prometheus_gets_the_names_of_a_bots_own_metrics_endpoint(
    config: dict[str, Any],
) -> None:
    """The collector's Prometheus translation suffixes unit-"1" gauges with `_ratio`;
    the rules and dashboards use a bot's /metrics names, so that unit is cleared on the
    Prometheus pipeline only (the other backends keep it)."""
    pipelines = config["service"]["pipelines"]
    prometheus = pipelines["metrics/prometheus"]["processors"]
    [transform] = [p for p in prometheus if _component_type(p) == "transform"]
    [group] = config["processors"][transform]["metric_statements"]
    assert group["context"] == "metric"
    assert group["statements"] == ['set(unit, "") where unit == "1"']
    assert transform not in pipelines["metrics"]["processors"]
    assert config["exporters"]["prometheusremotewrite"]["add_metric_suffixes"] is True
