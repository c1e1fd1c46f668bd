"""The NetworkPolicies let exactly the app's flows through, computed from the rendered policies."""

from __future__ import annotations

import copy

from tests.infra.capture import Captured
from tests.infra.reachability import INTERNET, Cluster, Endpoint

KUBE_DNS = Endpoint(
    "kube-dns", "kube-system", {"k8s-app": "kube-dns"}, (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"))
)
OTHER_POD = Endpoint("other-namespace-pod", "default", {"app": "other"}, (("http", 8080, "TCP"),))
OUTSIDE = Endpoint(INTERNET, None, {}, (("https", 443, "TCP"), ("ssh", 22, "TCP")))
SCRAPER = Endpoint("ama-metrics", "kube-system", {"rsName": "ama-metrics"})  # managed Prometheus' scraper
APP_PODS = ("video-streaming", "history", "recommendations", "rabbit", "db", "otel-collector")

EXPECTED = {
    ("video-streaming", "rabbit", 5672, "TCP"),
    ("video-streaming", "history", 8080, "TCP"),  # the "http" messaging mode
    ("history", "rabbit", 5672, "TCP"),
    ("history", "db", 27017, "TCP"),
    ("recommendations", "rabbit", 5672, "TCP"),
    ("recommendations", "db", 27017, "TCP"),
    # Traces: every service sends its spans to the collector over OTLP/HTTP.
    *(
        (service, "otel-collector", 4318, "TCP")
        for service in ("video-streaming", "history", "recommendations")
    ),
    # The public service: the load balancer forwards from anywhere, so any source reaches port 8080.
    *((source, "video-streaming", 8080, "TCP") for source in (INTERNET, OTHER_POD.name, KUBE_DNS.name)),
    # Metrics: the scraper reaches each web container's /metrics and each consumer's metrics port.
    *((SCRAPER.name, service, 8080, "TCP") for service in ("video-streaming", "history", "recommendations")),
    *((SCRAPER.name, service, 9464, "TCP") for service in ("history", "recommendations")),
    # Name resolution for every pod of the app.
    *((pod, "kube-dns", 53, protocol) for pod in APP_PODS for protocol in ("UDP", "TCP")),
}


def endpoints(captured: Captured) -> list[Endpoint]:
    pods = [
        Endpoint(
            workload["metadata"]["name"],
            workload["metadata"]["namespace"],
            workload["spec"]["template"]["metadata"]["labels"],
            tuple(
                (port["name"], port["containerPort"], port.get("protocol", "TCP"))
                for container in workload["spec"]["template"]["spec"]["containers"]
                for port in container.get("ports", [])
            ),
        )
        for workload in captured.workloads()
    ]
    return [*pods, KUBE_DNS, OTHER_POD, OUTSIDE, SCRAPER]


def cluster(captured: Captured, policies: list[dict] | None = None) -> Cluster:
    namespaces = {
        manifest["metadata"]["name"]: {
            **manifest["metadata"].get("labels", {}),
            "kubernetes.io/metadata.name": manifest["metadata"]["name"],
        }
        for manifest in captured.manifests("Namespace")
    }
    for name in ("kube-system", "default"):
        namespaces[name] = {"kubernetes.io/metadata.name": name}
    return Cluster(captured.manifests("NetworkPolicy") if policies is None else policies, namespaces)


def app_flows(allowed: set[tuple[str, str, int, str]]) -> set[tuple[str, str, int, str]]:
    """The flows our policies govern: those with an app pod at one end at least."""
    return {flow for flow in allowed if flow[0] in APP_PODS or flow[1] in APP_PODS}


def test_exactly_the_needed_flows_are_allowed(deployed: Captured):
    allowed = app_flows(cluster(deployed).flows(endpoints(deployed)))
    assert allowed - EXPECTED == set(), "allowed but not needed"
    assert EXPECTED - allowed == set(), "needed but blocked"


def test_every_app_pod_is_covered_by_a_default_deny(deployed: Captured):
    (deny,) = [m for m in deployed.manifests("NetworkPolicy") if m["metadata"]["name"] == "default-deny"]
    assert deny["spec"]["podSelector"] == {}
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]


def test_without_policies_everything_would_be_open(dev: Captured):
    """The calculation is not vacuous: with no policies every pair and port gets through."""
    allowed = cluster(dev, policies=[]).flows(endpoints(dev))
    assert ("video-streaming", "db", 27017, "TCP") in allowed
    assert ("db", INTERNET, 443, "TCP") in allowed
    assert len(allowed) > len(EXPECTED) * 2


def test_one_loose_rule_shows_up_as_an_extra_flow(dev: Captured):
    policies = copy.deepcopy(dev.manifests("NetworkPolicy"))
    rabbit = next(p for p in policies if p["metadata"]["name"] == "rabbit-flows")
    rabbit["spec"]["ingress"].append({"ports": [{"protocol": "TCP", "port": "management"}]})
    extra = app_flows(cluster(dev, policies).flows(endpoints(dev))) - EXPECTED
    assert ("history", "rabbit", 15672, "TCP") not in extra  # history's egress still forbids it
    assert (INTERNET, "rabbit", 15672, "TCP") in extra
