"""Traces on AKS: an OpenTelemetry Collector in the namespace, and the OTEL_* settings that send to it.

Every service exports its spans over OTLP/HTTP to `otel-collector:4318`; the collector batches them and,
as shipped, writes a one-line summary of each batch to its log (`kubectl logs deploy/otel-collector`).
To keep traces, add an exporter to a backend in COLLECTOR_CONFIG (e.g. `otlphttp` to Jaeger or Tempo,
or the contrib image's `azuremonitor` for Application Insights) and list it in the traces pipeline.
Only one playback in `traceSampleRatio` is traced, decided once at its request and kept end to end.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra import kube

core = k8s.core.v1

COLLECTOR = "otel-collector"
OTLP_HTTP_PORT = 4318
HEALTH_PORT = 13133
CONFIG_DIR = "/etc/otelcol"
COLLECTOR_UID = 10001
"""The collector image's own user."""
RESOURCES = kube.Resources("50m", "64Mi", "250m", "256Mi")

COLLECTOR_CONFIG: dict[str, Any] = {
    "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"0.0.0.0:{OTLP_HTTP_PORT}"}}}},
    "processors": {
        "memory_limiter": {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 20},
        "batch": {},
    },
    "exporters": {"debug": {"verbosity": "basic"}},
    "extensions": {"health_check": {"endpoint": f"0.0.0.0:{HEALTH_PORT}"}},
    "service": {
        "extensions": ["health_check"],
        "pipelines": {
            "traces": {
                "receivers": ["otlp"],
                "processors": ["memory_limiter", "batch"],
                "exporters": ["debug"],
            }
        },
    },
}


def tracing_env(sample_ratio: float) -> dict[str, str]:
    """The standard OTEL_* settings every service gets: OTLP/HTTP to the collector, sampled at its root."""
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{COLLECTOR}:{OTLP_HTTP_PORT}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": f"{sample_ratio:g}",
    }


class Collector(pulumi.ComponentResource):
    """The collector's configuration, Deployment and ClusterIP Service `otel-collector`."""

    def __init__(self, image: str, instance: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flixtube:app:Collector", COLLECTOR, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = kube.recommended_labels(COLLECTOR, instance, "tracing", image.rsplit(":", 1)[1])
        selector = kube.selector_labels(COLLECTOR, instance)
        config = core.ConfigMap(
            f"{COLLECTOR}-config",
            metadata=kube.object_meta(COLLECTOR, labels),
            data={"config.yaml": yaml.safe_dump(COLLECTOR_CONFIG, sort_keys=False)},
            opts=child,
        )
        container = core.ContainerArgs(
            name=COLLECTOR,
            image=image,
            image_pull_policy=kube.PULL_POLICY,
            args=[f"--config={CONFIG_DIR}/config.yaml"],
            ports=[
                core.ContainerPortArgs(name="otlp-http", container_port=OTLP_HTTP_PORT, protocol="TCP"),
                core.ContainerPortArgs(name="health", container_port=HEALTH_PORT, protocol="TCP"),
            ],
            resources=RESOURCES.args(),
            security_context=kube.container_security(COLLECTOR_UID),
            readiness_probe=kube.http_probe("/", "health", period=10, failures=3),
            liveness_probe=kube.http_probe("/", "health", period=20, failures=3),
            volume_mounts=[kube.mount("config", CONFIG_DIR)],
        )
        k8s.apps.v1.Deployment(
            COLLECTOR,
            metadata=kube.object_meta(
                COLLECTOR,
                labels,
                kube.checkov_skips(
                    CKV_K8S_43="official image pinned by version tag, like the backing services"
                ),
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                template=kube.pod_template(
                    labels,
                    COLLECTOR_UID,
                    [container],
                    [
                        core.VolumeArgs(
                            name="config", config_map=core.ConfigMapVolumeSourceArgs(name=COLLECTOR)
                        )
                    ],
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[config]),
        )
        kube.service(
            COLLECTOR, labels, selector, kube.Port("otlp-http", OTLP_HTTP_PORT, OTLP_HTTP_PORT), opts=child
        )
        self.register_outputs({})
