"""The Azure side under mocks: resource group, registry, cluster, AcrPull, provider, outputs."""

from __future__ import annotations

import base64
import json

import yaml

from tests.infra.capture import (
    CLUSTER_PRINCIPAL_ID,
    KUBECONFIG_TOKEN,
    KUBELET_OBJECT_ID,
    LOAD_BALANCER_IP,
    PASSWORD_PREFIX,
    ROOT,
    Captured,
)

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
OUTPUT_NAMES = {"resourceGroupName", "registryLoginServer", "clusterName", "kubeconfig"}
REGISTRY = "azure-native:containerregistry:Registry"
CLUSTER = "azure-native:containerservice:ManagedCluster"


def stack_file(stack: str) -> dict:
    return yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]


def test_project_file_runs_the_program_in_infra():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "flixtube"
    assert project["runtime"]["name"] == "python"
    assert project["main"].rstrip("/") == "infra"
    assert (ROOT / "infra" / "__main__.py").is_file()


def test_one_resource_group_registry_and_cluster(deployed: Captured):
    for typ in ("azure-native:resources:ResourceGroup", REGISTRY, CLUSTER):
        deployed.one(typ)
    location = stack_file(deployed.stack)["azure-native:location"]
    assert deployed.one(REGISTRY)["inputs"]["location"] == location
    assert deployed.one(CLUSTER)["inputs"]["location"] == location


def test_registry_has_no_admin_user_and_the_stack_sku(deployed: Captured):
    registry = deployed.one(REGISTRY)["inputs"]
    assert registry["adminUserEnabled"] is False
    assert registry["anonymousPullEnabled"] is False
    assert registry["sku"]["name"] == stack_file(deployed.stack)["flixtube:registrySku"]
    assert registry["registryName"].isalnum() and 5 <= len(registry["registryName"]) <= 50


def test_cluster_identity_rbac_version_and_network_policy(deployed: Captured):
    cluster = deployed.one(CLUSTER)["inputs"]
    config = stack_file(deployed.stack)
    assert cluster["identity"] == {"type": "SystemAssigned"}
    assert cluster["enableRBAC"] is True
    assert cluster["kubernetesVersion"] == config["flixtube:kubernetesVersion"]
    network = cluster["networkProfile"]
    assert network["networkPolicy"] == "cilium" and network["networkDataplane"] == "cilium"
    assert cluster["sku"]["tier"] == config["flixtube:clusterTier"]
    assert "aadProfile" not in cluster  # the provider needs a non-interactive kubeconfig


def test_node_pool_comes_from_config(deployed: Captured):
    (pool,) = deployed.one(CLUSTER)["inputs"]["agentPoolProfiles"]
    config = stack_file(deployed.stack)
    assert pool["mode"] == "System"
    assert pool["vmSize"] == config["flixtube:nodeVmSize"]
    assert pool["count"] == config["flixtube:nodeCount"]
    if deployed.stack == "prod":
        assert pool["enableAutoScaling"] is True
        assert pool["minCount"] == config["flixtube:nodeCount"]
        assert pool["maxCount"] == config["flixtube:nodeMaxCount"]
        assert pool["availabilityZones"] == ["1", "2", "3"]
    else:
        assert pool["enableAutoScaling"] is False
        assert "maxCount" not in pool and "availabilityZones" not in pool


def test_acr_pull_goes_to_the_kubelet_identity_on_the_registry(deployed: Captured):
    assignment = deployed.one("azure-native:authorization:RoleAssignment")["inputs"]
    registry_id = next(r for r in deployed.resources if r["type"] == REGISTRY)
    assert assignment["principalId"] == KUBELET_OBJECT_ID != CLUSTER_PRINCIPAL_ID
    assert assignment["principalType"] == "ServicePrincipal"
    assert assignment["roleDefinitionId"].endswith(f"/roleDefinitions/{ACR_PULL}")
    assert assignment["roleDefinitionId"].startswith("/subscriptions/")
    assert assignment["scope"].endswith(f"/{registry_id['inputs']['registryName']}")


def test_one_explicit_kubernetes_provider_from_the_user_credentials(deployed: Captured):
    provider = deployed.one("pulumi:providers:kubernetes")
    assert provider["name"] == "aks"
    assert KUBECONFIG_TOKEN in provider["inputs"]["kubeconfig"]  # decoded, not base64
    assert provider["inputs"]["clusterIdentifier"].endswith("/flixtube-" + deployed.stack)


def test_every_kubernetes_object_uses_the_explicit_provider(deployed: Captured):
    provider = deployed.one("pulumi:providers:kubernetes")
    objects = deployed.kubernetes()
    assert len(objects) >= 20
    for resource in objects:
        assert resource["provider"] is not None, resource["name"]
        assert resource["provider"].startswith(provider["urn"] + "::"), resource["name"]


def test_outputs_are_exactly_the_contract_names(deployed: Captured):
    assert set(deployed.outputs) == OUTPUT_NAMES | {"videoStreamingUrl"}
    assert deployed.outputs["videoStreamingUrl"]["value"] == f"http://{LOAD_BALANCER_IP}"
    assert deployed.outputs["registryLoginServer"]["value"].endswith(".azurecr.io")
    assert deployed.outputs["clusterName"]["value"] == f"flixtube-{deployed.stack}"


def test_no_credential_in_a_plain_output(deployed: Captured):
    assert deployed.outputs["kubeconfig"]["secret"] is True
    assert KUBECONFIG_TOKEN in deployed.outputs["kubeconfig"]["value"]
    plain = json.dumps([output["value"] for output in deployed.outputs.values() if not output["secret"]])
    encoded = base64.b64encode(KUBECONFIG_TOKEN.encode()).decode()
    for marker in (KUBECONFIG_TOKEN, encoded, PASSWORD_PREFIX, "password"):
        assert marker not in plain


def test_without_an_image_tag_only_the_platform_is_deployed(platform_only: Captured):
    assert set(platform_only.outputs) == OUTPUT_NAMES
    assert platform_only.kubernetes() == []
    platform_only.one("pulumi:providers:kubernetes")
    platform_only.one("azure-native:authorization:RoleAssignment")


def test_every_resource_sits_in_a_component(deployed: Captured):
    """Platform and app are ComponentResources; every other resource is a child of one of ours."""
    top = {"flixtube:platform:Platform", "flixtube:app:FlixTube"}
    for resource in deployed.resources:
        (parent,) = resource["parent_types"]  # the mock URN keeps the immediate parent's type
        if resource["type"] in top:
            assert parent == "pulumi:pulumi:Stack"
        else:
            assert parent.startswith("flixtube:"), resource["name"]


def test_the_program_also_runs_under_mocks_that_only_echo_inputs(captures: dict[str, Captured]):
    echo = captures["dev-echo"]
    assert echo.counts() == captures["dev"].counts()
    assert echo.outputs["kubeconfig"]["secret"] is True


def test_a_preview_registers_the_same_resources(captures: dict[str, Captured]):
    preview = captures["prod-preview"]
    assert preview.counts() == captures["prod"].counts()
    assert preview.outputs["kubeconfig"]["secret"] is True


PLATFORM_COUNTS = {
    "azure-native:alertsmanagement:PrometheusRuleGroup": 1,
    "azure-native:authorization:RoleAssignment": 1,
    "azure-native:containerregistry:Registry": 1,
    "azure-native:containerservice:ManagedCluster": 1,
    "azure-native:monitor:AzureMonitorWorkspace": 1,
    "azure-native:monitor:DataCollectionEndpoint": 1,
    "azure-native:monitor:DataCollectionRule": 1,
    "azure-native:monitor:DataCollectionRuleAssociation": 1,
    "azure-native:resources:ResourceGroup": 1,
    "flixtube:platform:AzureMonitoring": 1,
    "flixtube:platform:Platform": 1,
    "pulumi:providers:kubernetes": 1,
    "random:index/randomString:RandomString": 1,
}
APP_COUNTS = {
    "flixtube:app:BackingService": 2,
    "flixtube:app:Collector": 1,
    "flixtube:app:Credentials": 2,
    "flixtube:app:FlixTube": 1,
    "flixtube:app:Microservice": 3,
    "flixtube:app:NetworkPolicies": 1,
    "flixtube:app:Scraping": 1,
    "kubernetes:apps/v1:Deployment": 4,
    "kubernetes:azmonitoring.coreos.com/v1:PodMonitor": 1,
    "kubernetes:apps/v1:StatefulSet": 2,
    "kubernetes:core/v1:ConfigMap": 4,  # nginx template, broker definitions, dashboard, collector config
    "kubernetes:core/v1:Namespace": 1,
    "kubernetes:core/v1:Secret": 2,
    "kubernetes:core/v1:Service": 6,
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": 9,
    "random:index/randomPassword:RandomPassword": 2,
}
PROD_EXTRA = {
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": 1,
    "kubernetes:policy/v1:PodDisruptionBudget": 3,
}


def test_what_each_stack_creates(captures: dict[str, Captured]):
    """The inventory the docs and the closing note quote: resources per type."""
    assert captures["dev-platform"].counts() == captures["prod-platform"].counts() == PLATFORM_COUNTS
    assert captures["dev"].counts() == dict(sorted({**PLATFORM_COUNTS, **APP_COUNTS}.items()))
    assert captures["prod"].counts() == dict(sorted({**PLATFORM_COUNTS, **APP_COUNTS, **PROD_EXTRA}.items()))
