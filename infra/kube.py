"""Small builders shared by every workload: labels, the restricted security context, resources, probes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.config import NAMESPACE

core = k8s.core.v1
meta = k8s.meta.v1

PART_OF = "flixtube"
APP_UID = 10001
"""Our images run as this numeric user (the pod sets it; the image files are world-readable)."""

TMP_VOLUME = "tmp"
PULL_POLICY = "Always"
"""Check the registry on every start (layers stay cached): a re-pushed tag can never run stale."""


@dataclass(frozen=True)
class Resources:
    """CPU/memory requests and limits of one container."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    def args(self) -> core.ResourceRequirementsArgs:
        return core.ResourceRequirementsArgs(
            requests={"cpu": self.cpu_request, "memory": self.memory_request},
            limits={"cpu": self.cpu_limit, "memory": self.memory_limit},
        )


def selector_labels(name: str, instance: str) -> dict[str, str]:
    """The labels a Service, NetworkPolicy or PodDisruptionBudget selects a workload's pods by."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": instance}


def recommended_labels(name: str, instance: str, component: str, version: str) -> dict[str, str]:
    """Kubernetes' recommended labels (app.kubernetes.io/*)."""
    return {
        **selector_labels(name, instance),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def object_meta(
    name: str, labels: dict[str, str], annotations: dict[str, str] | None = None
) -> meta.ObjectMetaArgs:
    """Metadata with the exact name other pods dial (no auto-naming suffix) in the app namespace."""
    return meta.ObjectMetaArgs(name=name, namespace=NAMESPACE, labels=labels, annotations=annotations)


def pod_security(uid: int) -> core.PodSecurityContextArgs:
    """Pod-level part of the `restricted` Pod Security Standard; fsGroup makes volumes writable for uid."""
    return core.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid,
        fs_group=uid,
        seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault"),
    )


def pod_template(
    labels: dict[str, str],
    uid: int,
    containers: list[core.ContainerArgs],
    volumes: list[core.VolumeArgs],
    **extra: Any,
) -> core.PodTemplateSpecArgs:
    """A pod that runs as `uid`, gets no API token and no service-link variables (they would shadow
    settings such as RABBIT_PORT), with the given containers and volumes."""
    return core.PodTemplateSpecArgs(
        metadata=meta.ObjectMetaArgs(labels=labels),
        spec=core.PodSpecArgs(
            automount_service_account_token=False,
            enable_service_links=False,
            security_context=pod_security(uid),
            containers=containers,
            volumes=volumes,
            **extra,
        ),
    )


def container_security(uid: int) -> core.SecurityContextArgs:
    """Container-level part: non-root, no escalation, no capabilities, read-only root filesystem."""
    return core.SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid,
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        capabilities=core.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault"),
    )


def empty_dir(name: str, size: str = "64Mi") -> core.VolumeArgs:
    """A size-limited scratch volume (the root filesystem is read-only)."""
    return core.VolumeArgs(name=name, empty_dir=core.EmptyDirVolumeSourceArgs(size_limit=size))


def mount(name: str, path: str) -> core.VolumeMountArgs:
    return core.VolumeMountArgs(name=name, mount_path=path)


def literal_env(values: dict[str, str]) -> list[core.EnvVarArgs]:
    return [core.EnvVarArgs(name=key, value=value) for key, value in values.items()]


def secret_env(name: str, secret: str, key: str) -> core.EnvVarArgs:
    """An environment variable read from a Secret, so the value never appears in a pod spec."""
    return core.EnvVarArgs(
        name=name,
        value_from=core.EnvVarSourceArgs(
            secret_key_ref=core.SecretKeySelectorArgs(name=secret, key=key, optional=False)
        ),
    )


def http_probe(path: str, port: str, period: int, failures: int) -> core.ProbeArgs:
    return core.ProbeArgs(
        http_get=core.HTTPGetActionArgs(path=path, port=port),
        period_seconds=period,
        timeout_seconds=3,
        failure_threshold=failures,
    )


def tcp_probe(port: str, period: int, failures: int) -> core.ProbeArgs:
    return core.ProbeArgs(
        tcp_socket=core.TCPSocketActionArgs(port=port),
        period_seconds=period,
        timeout_seconds=5,
        failure_threshold=failures,
    )


def exec_probe(command: list[str], period: int, failures: int) -> core.ProbeArgs:
    return core.ProbeArgs(
        exec_=core.ExecActionArgs(command=command),
        period_seconds=period,
        timeout_seconds=10,
        failure_threshold=failures,
    )


def checkov_skips(**reasons: str) -> dict[str, str]:
    """Annotations that tell checkov which of its checks do not apply here, each with the reason."""
    return {
        f"checkov.io/skip{index}": f"{check}={reason}"
        for index, (check, reason) in enumerate(reasons.items(), start=1)
    }


@dataclass(frozen=True)
class Port:
    """One Service port: clients dial `port`, the pods listen on `target`."""

    name: str
    port: int
    target: int


def service(
    name: str,
    labels: dict[str, str],
    selector: dict[str, str],
    port: Port,
    *,
    opts: pulumi.ResourceOptions,
    public: bool = False,
) -> core.Service:
    """The Service other pods dial by `name`; a LoadBalancer only when it must be public."""
    return core.Service(
        f"{name}-service",
        metadata=object_meta(name, labels),
        spec=core.ServiceSpecArgs(
            type="LoadBalancer" if public else "ClusterIP",
            selector=selector,
            ports=[
                core.ServicePortArgs(name=port.name, port=port.port, target_port=port.target, protocol="TCP")
            ],
        ),
        opts=opts,
    )
