"""collector/otelcol-loadbalancing.yaml uses only keys the contrib collector's
``loadbalancing`` exporter knows, each with the type its Go field has.

The schema below is a table written by hand from the Go sources (their `mapstructure`
tags and field types), not a copy of them:

- exporter/loadbalancingexporter/config.go in open-telemetry/opentelemetry-collector-contrib
  (the version with routing keys traceID/service/metric/resource/streamID and the
  static/dns/k8s/aws_cloud_map resolvers; the search index's copy of the file carries
  id 689965417; an older copy, commit 870de3632d376a989b61459319e6e8754ec1532c, has the
  same resolver and routing-key fields minus streamID and aws_cloud_map);
- `protocol.otlp` is otlpexporter.Config in open-telemetry/opentelemetry-collector
  (exporter/otlpexporter/config.go, commit 01f013beb7ee3082cca2dbddadb7e1602a60d9a3),
  which squashes configgrpc.ClientConfig (config/configgrpc/configgrpc.go, commit
  011765913528cc6cc6ac264be6ed29355c7481c5) and names configretry.BackOffConfig
  `retry_on_failure` (config/configretry/backoff.go, commit
  0dfa78636bcb97c9ed5b37fe9829fe32be805911); `tls` is configtls.ClientConfig
  (config/configtls/configtls.go, commit 0027d37b231696e05678134146afd1582f54f835).

Only the parts our file can use are listed; a key outside the table fails the test, so
a new key needs a look at the source first.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

COLLECTOR = Path(__file__).resolve().parents[3] / "collector"
CONFIG_PATH = COLLECTOR / "otelcol-loadbalancing.yaml"

# Leaf types, named after the Go types of the fields.
STRING, BOOL, DURATION, INT, FLOAT = "string", "bool", "time.Duration", "int", "float64"
STRINGS, INTS = "[]string", "[]int32"

BACKOFF: dict[str, Any] = {  # configretry.BackOffConfig
    "enabled": BOOL, "initial_interval": DURATION, "randomization_factor": FLOAT,
    "multiplier": FLOAT, "max_interval": DURATION, "max_elapsed_time": DURATION,
}
TLS_CLIENT: dict[str, Any] = {  # configtls.ClientConfig (with the squashed Config)
    "ca_file": STRING, "cert_file": STRING, "key_file": STRING, "min_version": STRING,
    "max_version": STRING, "include_system_ca_certs_pool": BOOL, "reload_interval": DURATION,
    "insecure": BOOL, "insecure_skip_verify": BOOL, "server_name_override": STRING,
}
OTLP: dict[str, Any] = {  # otlpexporter.Config with configgrpc.ClientConfig squashed
    "retry_on_failure": BACKOFF,
    "endpoint": STRING, "compression": STRING, "tls": TLS_CLIENT,
    "keepalive": {"time": DURATION, "timeout": DURATION, "permit_without_stream": BOOL},
    "read_buffer_size": INT, "write_buffer_size": INT, "wait_for_ready": BOOL,
    "headers": {"*": STRING}, "balancer_name": STRING, "authority": STRING,
}
LOADBALANCING: dict[str, Any] = {  # loadbalancingexporter.Config
    "retry_on_failure": BACKOFF,
    "protocol": {"otlp": OTLP},
    "resolver": {
        "static": {"hostnames": STRINGS},
        "dns": {"hostname": STRING, "port": STRING, "interval": DURATION, "timeout": DURATION},
        "k8s": {"service": STRING, "ports": INTS, "timeout": DURATION,
                "return_hostnames": BOOL},
        "aws_cloud_map": {"namespace": STRING, "service_name": STRING,
                          "health_status": STRING, "interval": DURATION,
                          "timeout": DURATION, "port": INT},
    },
    "routing_key": STRING,
}
ROUTING_KEYS = {"traceID", "service", "metric", "resource", "streamID"}  # config.go consts
# Which routing keys make sense for which signal (traces: by trace or service).
ROUTING_BY_SIGNAL = {"traces": {"traceID", "service"},
                     "metrics": {"service", "resource", "metric", "streamID"}}

ENV_REF = re.compile(r"^\$\{env:[A-Z_][A-Z0-9_]*(?::-(?P<default>[^}]*))?\}$")
GO_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")


def _type_errors(value: Any, kind: str, where: str) -> list[str]:
    if isinstance(value, str) and (ref := ENV_REF.match(value)):
        default = ref.group("default")
        # expanded before decoding: the default (if any) must decode as the field's type
        value = yaml.safe_load(default) if default is not None else None
        if value is None:
            return []
        if kind in (STRING, DURATION):
            value = str(value)
    ok = {
        STRING: isinstance(value, str),
        BOOL: isinstance(value, bool),
        DURATION: isinstance(value, str) and bool(GO_DURATION.match(value)),
        INT: isinstance(value, int) and not isinstance(value, bool),
        FLOAT: isinstance(value, (int, float)) and not isinstance(value, bool),
        STRINGS: isinstance(value, list) and all(isinstance(v, str) for v in value),
        INTS: isinstance(value, list) and all(isinstance(v, int) for v in value),
    }[kind]
    return [] if ok else [f"{where}: {value!r} is not a {kind}"]


def schema_errors(node: Any, schema: dict[str, Any], where: str) -> list[str]:
    """Every key of ``node`` not in ``schema`` and every value of the wrong type."""
    if not isinstance(node, dict):
        return [f"{where}: expected a mapping, got {node!r}"]
    errors = []
    for key, value in node.items():
        spec = schema.get(key, schema.get("*"))
        path = f"{where}.{key}"
        if spec is None:
            errors.append(f"{path}: unknown key (known: {', '.join(sorted(schema))})")
        elif isinstance(spec, dict):
            errors += schema_errors(value, spec, path)
        else:
            errors += _type_errors(value, spec, path)
    return errors


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded = yaml.safe_load(CONFIG_PATH.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _balancers(config: dict[str, Any]) -> dict[str, Any]:
    found = {k: v for k, v in config["exporters"].items() if k.split("/")[0] == "loadbalancing"}
    assert found, "no loadbalancing exporter"
    return found


def test_only_known_keys_with_their_go_types(config: dict[str, Any]) -> None:
    errors = [e for name, settings in _balancers(config).items()
              for e in schema_errors(settings, LOADBALANCING, f"exporters.{name}")]
    assert not errors, errors


def test_the_checker_catches_a_misspelt_key_and_a_wrong_type() -> None:
    bad = {"routing_key": "resource", "resolver": {"dns": {"hostname": "h", "intervall": "5s",
                                                           "timeout": "soon"}},
           "protocol": {"otlp": {"tls": {"insecure": "${env:X:-maybe}"}}}}
    errors = schema_errors(bad, LOADBALANCING, "lb")
    assert any(e.startswith("lb.resolver.dns.intervall: unknown key") for e in errors)
    assert any(e.startswith("lb.resolver.dns.timeout: 'soon'") for e in errors)
    assert any(e.startswith("lb.protocol.otlp.tls.insecure: 'maybe'") for e in errors)
    assert len(errors) == 3


def test_each_balancer_has_one_resolver_and_a_routing_key_for_its_signal(
    config: dict[str, Any],
) -> None:
    pipelines = config["service"]["pipelines"]
    for name, settings in _balancers(config).items():
        assert len(settings["resolver"]) == 1, name
        assert settings["routing_key"] in ROUTING_KEYS, name
        signals = {p.split("/")[0] for p, pipe in pipelines.items() if name in pipe["exporters"]}
        assert signals, f"{name} is in no pipeline"
        for signal in signals:
            assert settings["routing_key"] in ROUTING_BY_SIGNAL[signal], (name, signal)
        # the resolver sets each backend's endpoint: one given here would be ignored
        assert "endpoint" not in settings["protocol"]["otlp"], name


def test_metrics_of_one_bot_stay_on_one_gateway(config: dict[str, Any]) -> None:
    """Routing by resource sends every series of one bot through one gateway, so
    Prometheus remote write receives each series from one writer, in order."""
    metrics = config["service"]["pipelines"]["metrics"]["exporters"]
    assert [config["exporters"][e]["routing_key"] for e in metrics] == ["resource"]


def test_pipelines_reference_defined_components_of_the_contrib_distribution(
    config: dict[str, Any],
) -> None:
    from tests.unit.fleet.test_otelcol_config import CONTRIB_COMPONENTS

    for section, known in CONTRIB_COMPONENTS.items():
        for component_id in config.get(section) or {}:
            assert component_id.split("/")[0] in known, (section, component_id)
    for name, pipeline in config["service"]["pipelines"].items():
        for section in ("receivers", "processors", "exporters"):
            for component_id in pipeline.get(section, []):
                assert component_id in config[section], (name, component_id)
        assert pipeline["processors"][0] == "memory_limiter", name
