"""Traces on AKS under mocks: a collector in the namespace, and every service configured to send to it."""

from __future__ import annotations

import pytest
import yaml

from infra.config import COLLECTOR_IMAGE, ConfigError
from tests.infra.capture import Captured
from tests.infra.test_infra_config import settings_of
from tests.infra.test_infra_workloads import microservices, pod_spec


def test_the_collector_receives_otlp_over_http_and_is_probed_on_its_health_port(deployed: Captured):
    workload = deployed.manifest("Deployment", "otel-collector")
    (container,) = pod_spec(workload)["containers"]
    assert container["image"] == COLLECTOR_IMAGE
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"otlp-http": 4318, "health": 13133}
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "health"
    config = yaml.safe_load(deployed.manifest("ConfigMap", "otel-collector")["data"]["config.yaml"])
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    assert config["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"] and set(pipeline["exporters"]) <= set(config["exporters"])
    assert set(pipeline["processors"]) <= set(config["processors"])
    (mount,) = container["volumeMounts"]
    assert container["args"] == [f"--config={mount['mountPath']}/config.yaml"]
    (volume,) = pod_spec(workload)["volumes"]
    assert volume["configMap"]["name"] == "otel-collector" and volume["name"] == mount["name"]
    service = deployed.manifest("Service", "otel-collector")["spec"]
    assert service["type"] == "ClusterIP" and service["ports"][0]["port"] == 4318


def test_every_service_container_sends_its_traces_to_the_collector(deployed: Captured):
    service = deployed.manifest("Service", "otel-collector")["spec"]
    endpoint = f"http://otel-collector:{service['ports'][0]['port']}"
    for workload in microservices(deployed):
        for container in pod_spec(workload)["containers"]:
            if container["image"].startswith("nginxinc/"):
                continue  # video-streaming's nginx front runs no tracer: the app behind it starts the trace
            env = {entry["name"]: entry.get("value") for entry in container["env"]}
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert env["OTEL_TRACES_EXPORTER"] == "otlp", where
            assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint, where
            assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf", where
            assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio", where
            assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.1", where  # the default traceSampleRatio


def test_the_sample_ratio_is_a_share_from_0_to_1():
    assert settings_of("dev", traceSampleRatio="1").trace_sample_ratio == 1.0
    assert settings_of("dev").trace_sample_ratio == 0.1
    for bad in ("1.5", "-0.1", "half"):
        with pytest.raises(ConfigError, match="traceSampleRatio"):
            settings_of("dev", traceSampleRatio=bad)
