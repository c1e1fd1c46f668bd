"""The rules of the FlixTube policy pack, as plain checks over a resource's properties.

Each check takes one resource (its type, its properties as the engine sees them, and its provider) and
returns the violations it found, one message each. `POLICIES` wraps them for pulumi-policy; the tests call
the same objects with the resources the program registers under mocks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

REGISTRY = "azure-native:containerregistry:Registry"
CLUSTER = "azure-native:containerservice:ManagedCluster"
ACR_PULL_ROLE = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
PUBLIC_SERVICES = frozenset({"video-streaming"})
"""The only Services that may be reachable from outside the cluster."""
NETWORK_POLICY_ENGINES = frozenset({"cilium", "calico", "azure"})
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Pod"})
CLUSTER_SCOPED_KINDS = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"})
_CREDENTIAL_IN_URL = re.compile(r"://[^/@\s:]+:[^/@\s]+@")
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|_PASS$")


class Provider(Protocol):
    name: str
    urn: str


class Resource(Protocol):
    """What the checks read; pulumi-policy's ResourceValidationArgs and PolicyResource both have it."""

    resource_type: str
    props: Mapping[str, Any]
    provider: Provider | None


Check = Callable[[Resource], Iterator[str]]


def _registry(resource: Resource) -> Iterator[str]:
    if resource.props.get("adminUserEnabled") is not False:
        yield "the registry's admin user must be off (adminUserEnabled: false); nodes pull with AcrPull"
    if resource.props.get("anonymousPullEnabled") is True:
        yield "anonymous pull must stay off"


def _cluster(resource: Resource) -> Iterator[str]:
    props = resource.props
    if (props.get("identity") or {}).get("type") not in ("SystemAssigned", "UserAssigned"):
        yield "the cluster needs a managed identity (SystemAssigned or UserAssigned)"
    if props.get("enableRBAC") is not True:
        yield "Kubernetes RBAC must be on (enableRBAC: true)"
    if (props.get("networkProfile") or {}).get("networkPolicy") not in NETWORK_POLICY_ENGINES:
        engines = ", ".join(sorted(NETWORK_POLICY_ENGINES))
        yield f"a network policy engine ({engines}) must enforce NetworkPolicies"
    if not props.get("kubernetesVersion"):
        yield "the Kubernetes version must come from config, not the Azure default of the day"


def _monitored(resource: Resource) -> Iterator[str]:
    metrics = (resource.props.get("azureMonitorProfile") or {}).get("metrics") or {}
    if metrics.get("enabled") is not True:
        yield "the managed Prometheus add-on must scrape the cluster (azureMonitorProfile.metrics.enabled)"


def _explicit_provider(resource: Resource) -> Iterator[str]:
    provider = resource.provider
    if provider is None or provider.name.startswith("default"):
        yield "Kubernetes objects must use the cluster's explicit provider, never the ambient kubeconfig"


def _namespace(resource: Resource) -> Iterator[str]:
    if resource.props.get("kind") in CLUSTER_SCOPED_KINDS:
        return
    if (resource.props.get("metadata") or {}).get("namespace") in (None, "", "default"):
        yield "namespaced objects belong in the app's namespace, not `default`"


def _pod_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    if props.get("kind") == "Pod":
        return props.get("spec") or {}
    return (((props.get("spec") or {}).get("template") or {}).get("spec")) or {}


def _looks_secret(name: str, value: str) -> bool:
    return bool(_CREDENTIAL_IN_URL.search(value) or _SECRET_NAME.search(name))


def _container(container: Mapping[str, Any], pod: Mapping[str, Any], *, runs_to_end: bool) -> Iterator[str]:
    name = container.get("name", "?")
    # An init container runs to its end before the others start; Kubernetes refuses probes on it.
    for probe in () if runs_to_end else ("readinessProbe", "livenessProbe"):
        if not container.get(probe):
            yield f"container {name} has no {probe}"
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        missing = {"cpu", "memory"} - set(resources.get(kind) or {})
        if missing:
            yield f"container {name} lacks {kind} for {', '.join(sorted(missing))}"
    context = container.get("securityContext") or {}
    pod_context = pod.get("securityContext") or {}
    if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
        yield f"container {name} must run as non-root (runAsNonRoot: true)"
    if context.get("allowPrivilegeEscalation") is not False:
        yield f"container {name} must set allowPrivilegeEscalation: false"
    if context.get("privileged"):
        yield f"container {name} must not be privileged"
    if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
        yield f"container {name} must drop all capabilities"
    image = str(container.get("image", ""))
    if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
        yield f"container {name} must use a pinned image tag, not {image!r}"
    for entry in container.get("env") or []:
        value = entry.get("value")
        if isinstance(value, str) and (
            _CREDENTIAL_IN_URL.search(value) or _SECRET_NAME.search(entry["name"])
        ):
            yield f"container {name} has a credential in plain env {entry['name']}; use a secretKeyRef"


def _workload(resource: Resource) -> Iterator[str]:
    if resource.props.get("kind") not in WORKLOAD_KINDS:
        return
    pod = _pod_spec(resource.props)
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(host):
            yield f"pods must not use {host}"
    for container in pod.get("initContainers") or []:
        # A "native sidecar" (restartPolicy: Always) runs beside the others and needs probes.
        yield from _container(container, pod, runs_to_end=container.get("restartPolicy") != "Always")
    for container in pod.get("containers") or []:
        yield from _container(container, pod, runs_to_end=False)


def _exposure(resource: Resource) -> Iterator[str]:
    props = resource.props
    if props.get("kind") != "Service":
        return
    service_type = (props.get("spec") or {}).get("type", "ClusterIP")
    name = (props.get("metadata") or {}).get("name")
    if service_type == "NodePort":
        yield f"Service {name} must not open node ports"
    if service_type == "LoadBalancer" and name not in PUBLIC_SERVICES:
        yield f"Service {name} must not be public; only {', '.join(sorted(PUBLIC_SERVICES))} is"


def _volume_claims(resource: Resource) -> Iterator[str]:
    if resource.props.get("kind") == "PersistentVolumeClaim":
        yield "use StatefulSet volumeClaimTemplates: a standalone claim waits forever on WaitForFirstConsumer"


def _default_deny(resources: list[Resource]) -> Iterator[str]:
    """Every namespace with pods has a NetworkPolicy that selects all pods for ingress and egress."""
    namespaces_with_pods = {
        (r.props.get("metadata") or {}).get("namespace")
        for r in resources
        if r.resource_type.startswith("kubernetes:") and r.props.get("kind") in WORKLOAD_KINDS
    }
    denied = {
        (r.props.get("metadata") or {}).get("namespace")
        for r in resources
        if r.props.get("kind") == "NetworkPolicy"
        and not (r.props.get("spec") or {}).get("podSelector")
        and {"Ingress", "Egress"} <= set((r.props.get("spec") or {}).get("policyTypes") or [])
        and not (r.props.get("spec") or {}).get("ingress")
        and not (r.props.get("spec") or {}).get("egress")
    }
    for namespace in sorted(str(n) for n in namespaces_with_pods - denied):
        yield f"namespace {namespace} has pods but no default-deny NetworkPolicy"


def _acr_pull(resources: list[Resource]) -> Iterator[str]:
    """Where a stack has a registry and a cluster, the nodes get AcrPull (and so need no registry secret)."""
    types = {r.resource_type for r in resources}
    if not {REGISTRY, CLUSTER} <= types:
        return
    grants = [
        r
        for r in resources
        if r.resource_type == "azure-native:authorization:RoleAssignment"
        and str(r.props.get("roleDefinitionId", "")).endswith(f"/roleDefinitions/{ACR_PULL_ROLE}")
    ]
    if not grants:
        yield "the cluster's kubelet identity needs AcrPull on the registry"


def _kubernetes_object(resource_type: str) -> bool:
    return resource_type.startswith("kubernetes:") and not resource_type.startswith("kubernetes:helm")


RESOURCE_CHECKS: dict[str, tuple[str, Callable[[str], bool], Check]] = {
    "acr-no-admin-user": (
        "The container registry has no admin user and no anonymous pull.",
        lambda t: t == REGISTRY,
        _registry,
    ),
    "aks-secure-cluster": (
        "AKS runs with a managed identity, RBAC, a network policy engine and a configured version.",
        lambda t: t == CLUSTER,
        _cluster,
    ),
    "aks-managed-prometheus": (
        "AKS runs the managed Prometheus add-on, so every service's /metrics is scraped and alerted on.",
        lambda t: t == CLUSTER,
        _monitored,
    ),
    "k8s-explicit-provider": (
        "Every Kubernetes object goes through the cluster's explicit provider.",
        _kubernetes_object,
        _explicit_provider,
    ),
    "k8s-app-namespace": ("Namespaced objects live outside `default`.", _kubernetes_object, _namespace),
    "k8s-hardened-pods": (
        "Containers have probes (init containers aside), requests and limits, a restricted security "
        "context, pinned images and no plain-text credentials.",
        _kubernetes_object,
        _workload,
    ),
    "k8s-only-video-streaming-public": (
        "Only video-streaming is reachable from outside the cluster; no NodePorts.",
        _kubernetes_object,
        _exposure,
    ),
    "k8s-no-standalone-volume-claims": (
        "Persistent volumes come from StatefulSet claim templates.",
        _kubernetes_object,
        _volume_claims,
    ),
}


def _resource_policy(name: str, description: str, applies: Callable[[str], bool], check: Check) -> Any:
    def validate(args: Any, report_violation: ReportViolation) -> None:
        if applies(args.resource_type):
            for message in check(args):
                report_violation(message, None)

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


def _stack_policy(check: Callable[[list[Resource]], Iterator[str]]) -> Callable[[Any, ReportViolation], None]:
    def validate(args: Any, report_violation: ReportViolation) -> None:
        for message in check(list(args.resources)):
            report_violation(message, None)

    return validate


POLICIES: list[Any] = [
    *(_resource_policy(name, *spec) for name, spec in RESOURCE_CHECKS.items()),
    StackValidationPolicy(
        name="k8s-default-deny-network",
        description="Each namespace with pods denies all traffic by default.",
        validate=_stack_policy(_default_deny),
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    StackValidationPolicy(
        name="aks-acr-pull",
        description="The cluster's nodes pull from the registry through an AcrPull role assignment.",
        validate=_stack_policy(_acr_pull),
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
]
