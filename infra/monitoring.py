"""Metrics on AKS: Azure Monitor managed Prometheus scrapes every FlixTube pod; alerts and a dashboard.

Azure side (`AzureMonitoring`, beside the cluster): an Azure Monitor workspace that stores the metrics, the
data collection endpoint and rule that route the cluster's Prometheus metrics into it, their association
with the cluster, and a Prometheus rule group loaded from the repository's rule file. The cluster runs
the metrics add-on (`azureMonitorProfile.metrics`, in platform.py), whose `ama-metrics` pods scrape.

Cluster side (`Scraping`, in the app's namespace): a PodMonitor (the add-on's own CRD group,
`azmonitoring.coreos.com`) for the web containers' `/metrics` and the consumers' `metrics` port, a
NetworkPolicy that lets the add-on's scraper in on exactly those ports, and the Grafana dashboard as a
ConfigMap labelled for Grafana's dashboard sidecar (import deploy/dashboards/flixtube.json by hand into
Azure Managed Grafana or any other).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pulumi_azure_native as azure
import pulumi_kubernetes as k8s
import yaml

from infra import kube

ROOT = Path(__file__).resolve().parent.parent
RULES_FILE = ROOT / "deploy" / "alerts" / "flixtube.rules.yaml"
DASHBOARD_FILE = ROOT / "deploy" / "dashboards" / "flixtube.json"

METRICS_PORT = 9464
"""The consumers' own /metrics (the web containers serve theirs on their HTTP port)."""
METRICS_PORT_NAME = "metrics"
SCRAPE_INTERVAL = "30s"
SCRAPER = {"namespace": "kube-system", "labels": {"rsName": "ama-metrics"}}
"""The add-on's replica set, which scrapes PodMonitor targets."""
STREAM = "Microsoft-PrometheusMetrics"
SEVERITY = {"critical": 1, "warning": 3}
"""Azure alert severities (0 = critical ... 4 = verbose) for the rule file's `severity` labels."""


def iso_duration(prometheus: str) -> str:
    """A Prometheus duration such as `5m` as the ISO 8601 one Azure wants (`PT5M`)."""
    match = re.fullmatch(r"(\d+)([smh])", prometheus)
    if match is None:
        raise pulumi.RunError(f"{RULES_FILE.name}: unsupported duration {prometheus!r}")
    return f"PT{match.group(1)}{match.group(2).upper()}"


def load_rules(path: Path = RULES_FILE) -> tuple[str, list[azure.alertsmanagement.PrometheusRuleArgs]]:
    """The rule file's one group as (interval, Azure rules)."""
    (group,) = yaml.safe_load(path.read_text())["groups"]
    rules = [
        azure.alertsmanagement.PrometheusRuleArgs(
            alert=rule["alert"],
            expression=rule["expr"],
            for_=iso_duration(rule["for"]) if "for" in rule else None,
            labels=rule.get("labels"),
            annotations=rule.get("annotations"),
            severity=SEVERITY[rule["labels"]["severity"]],
            enabled=True,
            resolve_configuration=azure.alertsmanagement.PrometheusRuleResolveConfigurationArgs(
                auto_resolved=True, time_to_resolve="PT10M"
            ),
        )
        for rule in group["rules"]
    ]
    return iso_duration(group.get("interval", "1m")), rules


class AzureMonitoring(pulumi.ComponentResource):
    """The workspace the cluster's Prometheus metrics go to, the route there, and the alert rules."""

    workspace_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        stack: str,
        location: str,
        resource_group_name: pulumi.Input[str],
        cluster_id: pulumi.Input[str],
        cluster_name: pulumi.Input[str],
        tags: dict[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flixtube:platform:AzureMonitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        monitor = azure.monitor
        common: dict[str, Any] = {
            "resource_group_name": resource_group_name,
            "location": location,
            "tags": tags,
        }
        workspace = monitor.AzureMonitorWorkspace(
            "metrics-workspace", azure_monitor_workspace_name=f"flixtube-{stack}", **common, opts=child
        )
        endpoint = monitor.DataCollectionEndpoint(
            "metrics-endpoint",
            data_collection_endpoint_name=f"flixtube-{stack}-prometheus",
            **common,
            opts=child,
        )
        rule = monitor.DataCollectionRule(
            "metrics-rule",
            data_collection_rule_name=f"flixtube-{stack}-prometheus",
            kind="Linux",
            data_collection_endpoint_id=endpoint.id,
            data_sources=monitor.DataCollectionRuleDataSourcesArgs(
                prometheus_forwarder=[
                    monitor.PrometheusForwarderDataSourceArgs(name="PrometheusDataSource", streams=[STREAM])
                ]
            ),
            destinations=monitor.DataCollectionRuleDestinationsArgs(
                monitoring_accounts=[
                    monitor.MonitoringAccountDestinationArgs(
                        account_resource_id=workspace.id, name="workspace"
                    )
                ]
            ),
            data_flows=[monitor.DataFlowArgs(streams=[STREAM], destinations=["workspace"])],
            **common,
            opts=child,
        )
        monitor.DataCollectionRuleAssociation(
            "metrics-rule-association",
            association_name=f"flixtube-{stack}-prometheus",
            resource_uri=cluster_id,
            data_collection_rule_id=rule.id,
            opts=child,
        )
        interval, rules = load_rules()
        azure.alertsmanagement.PrometheusRuleGroup(
            "alert-rules",
            rule_group_name=f"flixtube-{stack}",
            description=f"FlixTube alerts, from {RULES_FILE.relative_to(ROOT)}",
            scopes=[workspace.id, cluster_id],
            cluster_name=cluster_name,
            interval=interval,
            enabled=True,
            rules=rules,
            **common,
            opts=child,
        )
        self.workspace_id = workspace.id
        self.register_outputs({"workspaceId": self.workspace_id})


class Scraping(pulumi.ComponentResource):
    """What the add-on scrapes in the namespace, the door it scrapes through, and the dashboard."""

    def __init__(
        self,
        name: str,
        labels: dict[str, str],
        workload_selector: dict[str, str],
        http_port: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flixtube:app:Scraping", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        relabel_service = {
            "sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
            "targetLabel": "service",
        }
        k8s.apiextensions.CustomResource(
            "pod-monitor",
            api_version="azmonitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata=kube.object_meta("flixtube", labels),
            spec={
                "selector": {"matchLabels": workload_selector},
                "podMetricsEndpoints": [
                    {
                        "port": port,
                        "path": "/metrics",
                        "interval": SCRAPE_INTERVAL,
                        "relabelings": [relabel_service],
                    }
                    for port in ("http", METRICS_PORT_NAME)
                ],
            },
            opts=child,
        )
        netv1 = k8s.networking.v1
        netv1.NetworkPolicy(
            "netpol-allow-metrics-scrape",
            metadata=kube.object_meta("allow-metrics-scrape", labels),
            spec=netv1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=workload_selector),
                policy_types=["Ingress"],
                ingress=[
                    netv1.NetworkPolicyIngressRuleArgs(
                        from_=[
                            netv1.NetworkPolicyPeerArgs(
                                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                    match_labels={"kubernetes.io/metadata.name": SCRAPER["namespace"]}
                                ),
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=SCRAPER["labels"]),
                            )
                        ],
                        ports=[
                            netv1.NetworkPolicyPortArgs(protocol="TCP", port=port)
                            for port in (http_port, METRICS_PORT)
                        ],
                    )
                ],
            ),
            opts=child,
        )
        k8s.core.v1.ConfigMap(
            "dashboard",
            metadata=kube.object_meta("flixtube-dashboard", {**labels, "grafana_dashboard": "1"}),
            data={DASHBOARD_FILE.name: json.dumps(json.loads(DASHBOARD_FILE.read_text()), indent=1)},
            opts=child,
        )
        self.register_outputs({})
