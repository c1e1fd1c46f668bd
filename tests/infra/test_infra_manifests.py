"""Every manifest against the real schema of the configured Kubernetes version, plus what schemas miss."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
from kubernetes_validate.utils import all_versions, major_minor

from tests.infra.capture import Captured, stack_config

DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAMED = ("Service", "Namespace")  # their names become DNS labels
STRICT_SCHEMA = "v{}.0-local-strict"
CUSTOM_RESOURCES = {"azmonitoring.coreos.com/v1"}
"""API groups of CRDs, which kubernetes-validate has no schema for (test_infra_monitoring checks them)."""


def kubernetes_version(stack: str) -> str:
    return stack_config(stack, {})["flixtube:kubernetesVersion"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_kubernetes_validate_ships_the_configured_version(stack: str):
    version = major_minor(kubernetes_version(stack))
    assert version in {major_minor(v) for v in all_versions()}, f"no schema for {version}: pick another"


def test_every_manifest_matches_the_strict_schema(deployed: Captured):
    version = kubernetes_version(deployed.stack)
    manifests = [m for m in deployed.manifests() if m["apiVersion"] not in CUSTOM_RESOURCES]
    assert manifests
    for manifest in manifests:
        validated = kubernetes_validate.validate(manifest, version, strict=True)
        assert major_minor(validated) == major_minor(version)


def test_the_strict_schema_catches_a_misspelt_field(dev: Captured):
    manifest = dev.manifest("Deployment", "history")
    broken = {**manifest, "spec": {**manifest["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_version("dev"), strict=True)


def test_names_are_valid_dns_1123(deployed: Captured):
    for manifest in deployed.manifests():
        name = manifest["metadata"]["name"]
        pattern = DNS_1123_LABEL if manifest["kind"] in LABEL_NAMED else DNS_1123_SUBDOMAIN
        limit = 63 if manifest["kind"] in LABEL_NAMED else 253
        assert pattern.match(name) and len(name) <= limit, f"{manifest['kind']} {name}"
    for _, container in deployed.containers():
        assert DNS_1123_LABEL.match(container["name"])
        for port in container.get("ports", []):
            assert len(port["name"]) <= 15 and DNS_1123_LABEL.match(port["name"])


def pods_by_labels(captured: Captured) -> list[tuple[dict[str, str], dict]]:
    return [
        (workload["spec"]["template"]["metadata"]["labels"], workload["spec"]["template"]["spec"])
        for workload in captured.workloads()
    ]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_workload_selectors_match_their_own_pod_labels(deployed: Captured):
    for workload in deployed.workloads():
        selector = workload["spec"]["selector"]["matchLabels"]
        assert matches(selector, workload["spec"]["template"]["metadata"]["labels"])


def test_each_service_selects_exactly_one_workload_whose_container_has_the_target_port(deployed: Captured):
    pods = pods_by_labels(deployed)
    for service in deployed.manifests("Service"):
        selected = [spec for labels, spec in pods if matches(service["spec"]["selector"], labels)]
        assert len(selected) == 1, service["metadata"]["name"]
        ports = [port for container in selected[0]["containers"] for port in container.get("ports", [])]
        for service_port in service["spec"]["ports"]:
            target = service_port["targetPort"]
            key = "name" if isinstance(target, str) else "containerPort"
            assert any(port[key] == target for port in ports), f"{service['metadata']['name']}: {target}"


def test_budgets_and_autoscalers_point_at_real_deployments(deployed: Captured):
    pods = pods_by_labels(deployed)
    for budget in deployed.manifests("PodDisruptionBudget"):
        selector = budget["spec"]["selector"]["matchLabels"]
        assert sum(matches(selector, labels) for labels, _ in pods) == 1
    deployments = {m["metadata"]["name"] for m in deployed.manifests("Deployment")}
    for autoscaler in deployed.manifests("HorizontalPodAutoscaler"):
        assert autoscaler["spec"]["scaleTargetRef"]["name"] in deployments


def test_every_secret_key_ref_names_an_existing_secret_key(deployed: Captured):
    secrets = {m["metadata"]["name"]: set(m["stringData"]) for m in deployed.manifests("Secret")}
    refs = 0
    for _, container in deployed.containers():
        for entry in container.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs += 1
                assert ref["key"] in secrets.get(ref["name"], set()), f"{entry['name']} -> {ref}"
    assert refs >= 10


def test_probes_name_ports_the_container_has(deployed: Captured):
    for workload, container in deployed.containers():
        names = {port["name"] for port in container.get("ports", [])}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            action = container.get(probe, {})
            port = (action.get("httpGet") or action.get("tcpSocket") or {}).get("port")
            if port is not None:
                assert port in names, f"{workload}/{container['name']} {probe}: {port}"


def test_volume_mounts_name_declared_volumes(deployed: Captured):
    for workload in deployed.workloads():
        spec = workload["spec"]
        declared = {volume["name"] for volume in spec["template"]["spec"].get("volumes", [])}
        declared |= {claim["metadata"]["name"] for claim in spec.get("volumeClaimTemplates", [])}
        for container in spec["template"]["spec"]["containers"]:
            for volume_mount in container.get("volumeMounts", []):
                assert volume_mount["name"] in declared
