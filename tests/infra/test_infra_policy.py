"""The policy pack passes what the program registers and catches deliberately broken variants of it."""

from __future__ import annotations

import copy
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy

from policy.rules import POLICIES
from tests.infra.capture import ROOT, Captured


@dataclass
class Args:
    """The part of pulumi-policy's ResourceValidationArgs / PolicyResource the rules read."""

    resource_type: str
    props: dict[str, Any]
    urn: str
    name: str
    provider: SimpleNamespace | None


def as_policy_args(captured: Captured) -> list[Args]:
    args = []
    for resource in captured.resources:
        provider = None
        if resource["provider"]:
            urn = resource["provider"].rsplit("::", 1)[0]
            provider = SimpleNamespace(urn=urn, name=urn.split("::")[-1])
        args.append(Args(resource["type"], resource["inputs"], resource["urn"], resource["name"], provider))
    return args


def violations(resources: list[Args]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)

    def collect(rule: str, where: str) -> Callable[..., None]:
        return lambda message, _urn=None: found[rule].append(f"{where}: {message}")

    for policy in POLICIES:
        if isinstance(policy, StackValidationPolicy):
            policy.validate(SimpleNamespace(resources=resources), collect(policy.name, "stack"))
            continue
        assert isinstance(policy, ResourceValidationPolicy)
        for resource in resources:
            policy.validate(resource, collect(policy.name, resource.name))
    return dict(found)


def test_the_pack_names_its_rules_uniquely_and_runs_in_the_project_environment():
    names = [policy.name for policy in POLICIES]
    assert len(names) == len(set(names)) >= 8
    pack = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert pack["runtime"]["name"] == "python"
    assert "PolicyPack(" in (ROOT / "policy" / "__main__.py").read_text()


@pytest.mark.parametrize("run", ["dev", "prod", "dev-platform", "prod-platform"])
def test_the_program_passes_every_rule(run: str, captures: dict[str, Captured]):
    assert violations(as_policy_args(captures[run])) == {}


def find(resources: list[Args], kind_or_type: str, name: str | None = None) -> Args:
    for resource in resources:
        kind = resource.props.get("kind")
        if kind_or_type in (resource.resource_type, kind) and (
            name is None or (resource.props.get("metadata") or {}).get("name", resource.name) == name
        ):
            return resource
    raise AssertionError(f"no {kind_or_type} {name}")


def first_container(resources: list[Args], workload: str = "history") -> dict[str, Any]:
    return find(resources, "Deployment", workload).props["spec"]["template"]["spec"]["containers"][0]


def init_container(resources: list[Args]) -> dict[str, Any]:
    """video-streaming's init container (it fills the videos volume the nginx front shares)."""
    return find(resources, "Deployment", "video-streaming").props["spec"]["template"]["spec"][
        "initContainers"
    ][0]


def standalone_claim(resources: list[Args]) -> Args:
    """A claim made like the Secret (same provider and namespace), but outside any StatefulSet."""
    claim = copy.deepcopy(find(resources, "Secret"))
    claim.resource_type = "kubernetes:core/v1:PersistentVolumeClaim"
    claim.props = {"kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "flixtube"}}
    return claim


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    target[key] = value


REGISTRY, CLUSTER = "azure-native:containerregistry:Registry", "azure-native:containerservice:ManagedCluster"
BREAKAGES: dict[str, tuple[Callable[[list[Args]], None], str]] = {
    "admin user on": (lambda r: _set(find(r, REGISTRY).props, "adminUserEnabled", True), "acr-no-admin-user"),
    "no RBAC": (lambda r: _set(find(r, CLUSTER).props, "enableRBAC", False), "aks-secure-cluster"),
    "no network policy engine": (
        lambda r: _set(find(r, CLUSTER).props["networkProfile"], "networkPolicy", "none"),
        "aks-secure-cluster",
    ),
    "service principal cluster": (lambda r: find(r, CLUSTER).props.pop("identity"), "aks-secure-cluster"),
    "no metrics add-on": (
        lambda r: find(r, CLUSTER).props.pop("azureMonitorProfile"),
        "aks-managed-prometheus",
    ),
    "default provider": (
        lambda r: setattr(
            find(r, "Service", "history"), "provider", SimpleNamespace(name="default_4_34_2", urn="u")
        ),
        "k8s-explicit-provider",
    ),
    "no provider": (lambda r: setattr(find(r, "Secret"), "provider", None), "k8s-explicit-provider"),
    "default namespace": (
        lambda r: _set(find(r, "Deployment", "history").props["metadata"], "namespace", "default"),
        "k8s-app-namespace",  # and the stack rule: `default` now has pods but no default deny
    ),
    "no liveness probe": (lambda r: first_container(r).pop("livenessProbe"), "k8s-hardened-pods"),
    "no limits": (lambda r: first_container(r)["resources"].pop("limits"), "k8s-hardened-pods"),
    "init container without limits": (
        lambda r: init_container(r)["resources"].pop("limits"),
        "k8s-hardened-pods",
    ),
    "init container as root": (
        lambda r: _set(init_container(r)["securityContext"], "runAsNonRoot", False),
        "k8s-hardened-pods",
    ),
    "privileged": (
        lambda r: _set(first_container(r)["securityContext"], "privileged", True),
        "k8s-hardened-pods",
    ),
    "privileged init container": (
        lambda r: _set(
            find(r, "StatefulSet", "rabbit").props["spec"]["template"]["spec"]["initContainers"][0][
                "securityContext"
            ],
            "privileged",
            True,
        ),
        "k8s-hardened-pods",  # init containers need no probes, but every other rule holds for them
    ),
    "escalation allowed": (
        lambda r: first_container(r)["securityContext"].pop("allowPrivilegeEscalation"),
        "k8s-hardened-pods",
    ),
    "latest image": (
        lambda r: _set(first_container(r), "image", "example.azurecr.io/history:latest"),
        "k8s-hardened-pods",
    ),
    "password in plain env": (
        lambda r: first_container(r)["env"].append(
            {"name": "RABBIT", "value": "amqp://guest:guest@rabbit:5672"}
        ),
        "k8s-hardened-pods",
    ),
    "host network": (
        lambda r: _set(find(r, "StatefulSet", "db").props["spec"]["template"]["spec"], "hostNetwork", True),
        "k8s-hardened-pods",
    ),
    "public history": (
        lambda r: _set(find(r, "Service", "history").props["spec"], "type", "LoadBalancer"),
        "k8s-only-video-streaming-public",
    ),
    "node port": (
        lambda r: _set(find(r, "Service", "rabbit").props["spec"], "type", "NodePort"),
        "k8s-only-video-streaming-public",
    ),
    "standalone claim": (lambda r: r.append(standalone_claim(r)), "k8s-no-standalone-volume-claims"),
    "no AcrPull": (
        lambda r: r.remove(find(r, "azure-native:authorization:RoleAssignment")),
        "aks-acr-pull",
    ),
    "no default deny": (
        lambda r: r.remove(find(r, "NetworkPolicy", "default-deny")),
        "k8s-default-deny-network",
    ),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_resource_is_reported_by_its_rule(breakage: str, dev: Captured):
    resources = copy.deepcopy(as_policy_args(dev))
    break_it, rule = BREAKAGES[breakage]
    break_it(resources)
    found = violations(resources)
    assert rule in found, f"{breakage} was not caught: {found}"
    also = {"k8s-default-deny-network"} if breakage == "default namespace" else set()
    assert set(found) == {rule} | also, f"{breakage} tripped other rules too: {found}"


def analyze_with_the_served_pack(resource_type: str, properties: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Start the pack as Pulumi does (it serves the Analyzer protocol on a loopback port) and ask it."""
    process = subprocess.Popen(
        [sys.executable, "policy"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        port = int(process.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=60)
            struct = struct_pb2.Struct()
            struct.update(properties)
            request = analyzer_pb2.AnalyzeRequest(
                type=resource_type,
                properties=struct,
                urn=f"urn:pulumi:dev::flixtube::{resource_type}::x",
                name="x",
            )
            response = stub.Analyze(request, timeout=60)
        return {policy.name for policy in info.policies}, {d.policyName for d in response.diagnostics}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # the pack's answers are in; a slow shutdown is not what is tested
            process.kill()
            process.communicate()


def test_the_pack_serves_every_rule_and_reports_a_violation():
    served, reported = analyze_with_the_served_pack(
        "azure-native:containerregistry:Registry", {"adminUserEnabled": True, "sku": {"name": "Basic"}}
    )
    assert served == {policy.name for policy in POLICIES}
    assert reported == {"acr-no-admin-user"}
