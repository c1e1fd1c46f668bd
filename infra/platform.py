"""The Azure platform: resource group, container registry, AKS cluster, and the Kubernetes provider on it."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_azure_native as azure
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.config import Settings
from infra.monitoring import AzureMonitoring

ACR_PULL_ROLE = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
"""Built-in role definition id of AcrPull (read images, nothing else)."""

SYSTEM_POOL = "system"


def kubelet_object_id(identity_profile: Mapping[str, Any] | None) -> str | None:
    """The object id of the identity the nodes pull images with (not the cluster's control-plane identity)."""
    kubelet = (identity_profile or {}).get("kubeletidentity")
    return kubelet.object_id if kubelet is not None else None


def decode_kubeconfig(credentials: Any) -> str:
    """The first kubeconfig of a `listManagedClusterUserCredentials` answer, decoded from base64."""
    kubeconfigs = credentials.kubeconfigs or []
    if not kubeconfigs:
        raise pulumi.RunError("AKS returned no user credentials for the cluster")
    return base64.b64decode(kubeconfigs[0].value).decode()


class Platform(pulumi.ComponentResource):
    """Resource group, registry and cluster of one stack, and the Kubernetes provider built from it."""

    resource_group_name: pulumi.Output[str]
    registry_login_server: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    acr_pull: azure.authorization.RoleAssignment
    """Pods can pull from the registry once this exists (the grant can take minutes to apply)."""

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flixtube:platform:Platform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {"app": "flixtube", "stack": settings.stack, "managed-by": "pulumi"}

        group = azure.resources.ResourceGroup(f"flixtube-{settings.stack}", tags=tags, opts=child)
        registry = self._registry(settings, group, tags, child)
        cluster = self._cluster(settings, group, tags, child)

        AzureMonitoring(
            "monitoring",
            stack=settings.stack,
            location=settings.location,
            resource_group_name=group.name,
            cluster_id=cluster.id,
            cluster_name=cluster.name,
            tags=tags,
            opts=child,
        )

        client = azure.authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self.acr_pull = azure.authorization.RoleAssignment(
            "kubelet-acr-pull",
            principal_id=cluster.identity_profile.apply(kubelet_object_id),
            principal_type=azure.authorization.PrincipalType.SERVICE_PRINCIPAL,
            role_definition_id=client.subscription_id.apply(
                lambda subscription: (
                    f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/"
                    f"{ACR_PULL_ROLE}"
                )
            ),
            scope=registry.id,
            description="AKS nodes pull FlixTube images without any registry secret",
            opts=child,
        )

        credentials = azure.containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=group.name,
            resource_name=cluster.name,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        self.kubeconfig = pulumi.Output.secret(credentials.apply(decode_kubeconfig))
        self.provider = k8s.Provider(
            "aks",
            kubeconfig=self.kubeconfig,
            cluster_identifier=cluster.id,
            delete_unreachable=True,
            opts=child,
        )

        self.resource_group_name = group.name
        self.registry_login_server = registry.login_server
        self.cluster_name = cluster.name
        self.register_outputs(
            {
                "resourceGroupName": self.resource_group_name,
                "registryLoginServer": self.registry_login_server,
                "clusterName": self.cluster_name,
                "kubeconfig": self.kubeconfig,
            }
        )

    @staticmethod
    def _registry(
        settings: Settings,
        group: azure.resources.ResourceGroup,
        tags: dict[str, str],
        child: pulumi.ResourceOptions,
    ) -> azure.containerregistry.Registry:
        # Registry names are global, 5-50 letters and digits: a random suffix keeps stacks apart.
        suffix = random.RandomString("registry-suffix", length=8, special=False, upper=False, opts=child)
        stack = re.sub(r"[^a-z0-9]", "", settings.stack.lower())
        premium = settings.registry_sku == "Premium"
        return azure.containerregistry.Registry(
            "registry",
            registry_name=suffix.result.apply(lambda random_part: f"flixtube{stack}{random_part or ''}"),
            resource_group_name=group.name,
            location=settings.location,
            sku=azure.containerregistry.SkuArgs(name=settings.registry_sku),
            admin_user_enabled=False,
            anonymous_pull_enabled=False,
            zone_redundancy="Enabled" if premium and settings.zones else "Disabled",
            tags=tags,
            opts=child,
        )

    @staticmethod
    def _cluster(
        settings: Settings,
        group: azure.resources.ResourceGroup,
        tags: dict[str, str],
        child: pulumi.ResourceOptions,
    ) -> azure.containerservice.ManagedCluster:
        cs = azure.containerservice
        pool = cs.ManagedClusterAgentPoolProfileArgs(
            name=SYSTEM_POOL,
            mode=cs.AgentPoolMode.SYSTEM,
            type=cs.AgentPoolType.VIRTUAL_MACHINE_SCALE_SETS,
            os_type=cs.OSType.LINUX,
            os_sku=cs.OSSKU.AZURE_LINUX,
            vm_size=settings.node_vm_size,
            count=settings.node_count,
            enable_auto_scaling=settings.autoscaling,
            min_count=settings.node_count if settings.autoscaling else None,
            max_count=settings.node_max_count,
            availability_zones=list(settings.zones) or None,
            upgrade_settings=cs.AgentPoolUpgradeSettingsArgs(max_surge="33%"),
        )
        return cs.ManagedCluster(
            "cluster",
            resource_name_=f"flixtube-{settings.stack}",
            resource_group_name=group.name,
            location=settings.location,
            dns_prefix=f"flixtube-{settings.stack}",
            kubernetes_version=settings.kubernetes_version,
            identity=cs.ManagedClusterIdentityArgs(type=cs.ResourceIdentityType.SYSTEM_ASSIGNED),
            enable_rbac=True,
            # Local accounts stay on: an Entra ID kubeconfig needs an interactive login the provider lacks.
            disable_local_accounts=False,
            sku=cs.ManagedClusterSKUArgs(name=cs.ManagedClusterSKUName.BASE, tier=settings.cluster_tier),
            agent_pool_profiles=[pool],
            network_profile=cs.ContainerServiceNetworkProfileArgs(
                network_plugin=cs.NetworkPlugin.AZURE,
                network_plugin_mode=cs.NetworkPluginMode.OVERLAY,
                network_dataplane=cs.NetworkDataplane.CILIUM,
                network_policy=cs.NetworkPolicy.CILIUM,
                load_balancer_sku=cs.LoadBalancerSku.STANDARD,
            ),
            # The managed Prometheus add-on (ama-metrics pods); monitoring.py routes what it scrapes.
            azure_monitor_profile=cs.ManagedClusterAzureMonitorProfileArgs(
                metrics=cs.ManagedClusterAzureMonitorProfileMetricsArgs(enabled=True)
            ),
            auto_upgrade_profile=cs.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel=cs.UpgradeChannel.PATCH,
                node_os_upgrade_channel=cs.NodeOSUpgradeChannel.NODE_IMAGE,
            ),
            tags=tags,
            opts=child,
        )
