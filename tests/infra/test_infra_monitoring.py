"""Metrics on AKS under mocks: managed Prometheus on, what it scrapes, its way in, alerts and dashboard."""

from __future__ import annotations

import json

import yaml

from infra.monitoring import DASHBOARD_FILE, RULES_FILE, iso_duration
from tests.infra.capture import Captured
from tests.infra.test_infra_network import APP_PODS, SCRAPER, cluster, endpoints

MICROSERVICES = ("video-streaming", "history", "recommendations")
CONSUMERS = ("history", "recommendations")


def selected(selector: dict, labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def test_the_cluster_runs_the_managed_prometheus_add_on(deployed: Captured):
    cluster_inputs = deployed.one("azure-native:containerservice:ManagedCluster")["inputs"]
    assert cluster_inputs["azureMonitorProfile"]["metrics"]["enabled"] is True


def test_the_cluster_metrics_reach_an_azure_monitor_workspace(deployed: Captured):
    workspace = deployed.one("azure-native:monitor:AzureMonitorWorkspace")
    endpoint = deployed.one("azure-native:monitor:DataCollectionEndpoint")
    rule = deployed.one("azure-native:monitor:DataCollectionRule")["inputs"]
    association = deployed.one("azure-native:monitor:DataCollectionRuleAssociation")["inputs"]
    assert workspace["inputs"]["azureMonitorWorkspaceName"] == f"flixtube-{deployed.stack}"
    assert rule["dataCollectionEndpointId"].endswith(f"/{endpoint['name']}")
    (source,) = rule["dataSources"]["prometheusForwarder"]
    (destination,) = rule["destinations"]["monitoringAccounts"]
    assert destination["accountResourceId"].endswith(f"/{workspace['name']}")
    assert rule["dataFlows"] == [{"streams": source["streams"], "destinations": [destination["name"]]}]
    assert source["streams"] == ["Microsoft-PrometheusMetrics"]
    assert association["resourceUri"].endswith(f"/flixtube-{deployed.stack}")  # the cluster's id
    assert association["dataCollectionRuleId"].endswith("/metrics-rule")


def test_the_alert_rules_are_the_rule_file(deployed: Captured):
    group = deployed.one("azure-native:alertsmanagement:PrometheusRuleGroup")["inputs"]
    (source,) = yaml.safe_load(RULES_FILE.read_text())["groups"]
    assert group["interval"] == "PT1M" and group["enabled"] is True
    assert group["clusterName"] == f"flixtube-{deployed.stack}"
    assert len(group["scopes"]) == 2  # the workspace and the cluster
    assert [rule["alert"] for rule in group["rules"]] == [rule["alert"] for rule in source["rules"]]
    for deployed_rule, rule in zip(group["rules"], source["rules"], strict=True):
        assert deployed_rule["expression"] == rule["expr"]
        assert deployed_rule.get("for") == (iso_duration(rule["for"]) if "for" in rule else None)
        assert deployed_rule["severity"] == {"critical": 1, "warning": 3}[rule["labels"]["severity"]]
        assert deployed_rule["annotations"] == rule["annotations"]


def test_a_pod_monitor_scrapes_every_microservice_on_its_metrics_ports(deployed: Captured):
    (monitor,) = deployed.manifests("PodMonitor")
    assert monitor["apiVersion"] == "azmonitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == "flixtube"
    spec = monitor["spec"]
    ports = {endpoint["port"] for endpoint in spec["podMetricsEndpoints"]}
    assert ports == {"http", "metrics"}
    for endpoint in spec["podMetricsEndpoints"]:
        assert endpoint["path"] == "/metrics"
        (relabel,) = endpoint["relabelings"]
        assert relabel["targetLabel"] == "service"  # the alert rules and the dashboard group by it
        assert relabel["sourceLabels"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_name"]
    scraped = {}
    for workload in deployed.workloads():
        template = workload["spec"]["template"]
        if selected(spec["selector"], template["metadata"]["labels"]):
            names = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
            scraped[workload["metadata"]["name"]] = names & ports
    assert scraped == {
        "video-streaming": {"http"},
        "history": {"http", "metrics"},
        "recommendations": {"http", "metrics"},
    }


def test_each_consumer_serves_metrics_on_the_port_it_declares(deployed: Captured):
    for workload in deployed.manifests("Deployment"):
        containers = {c["name"]: c for c in workload["spec"]["template"]["spec"]["containers"]}
        if workload["metadata"]["name"] not in CONSUMERS:
            continue
        worker = containers["worker"]
        (port,) = worker["ports"]
        env = {entry["name"]: entry.get("value") for entry in worker["env"]}
        assert (port["name"], env["METRICS_PORT"]) == ("metrics", str(port["containerPort"]))


def test_only_the_scraper_gets_in_on_the_metrics_ports(deployed: Captured):
    allowed = cluster(deployed).flows(endpoints(deployed))
    from_scraper = {
        (target, port) for source, target, port, _ in allowed if source == SCRAPER.name and target in APP_PODS
    }
    assert from_scraper == {
        *((service, 8080) for service in MICROSERVICES),
        *((service, 9464) for service in CONSUMERS),
    }
    into_metrics = {source for source, target, port, _ in allowed if port == 9464}
    assert into_metrics == {SCRAPER.name}


def test_the_dashboard_ships_in_a_config_map_for_grafana(deployed: Captured):
    config_map = deployed.manifest("ConfigMap", "flixtube-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (shipped,) = config_map["data"].values()
    assert json.loads(shipped) == json.loads(DASHBOARD_FILE.read_text())


def test_the_platform_alone_already_monitors_the_cluster(platform_only: Captured):
    assert platform_only.one("azure-native:alertsmanagement:PrometheusRuleGroup")
    assert platform_only.manifests("PodMonitor") == []
