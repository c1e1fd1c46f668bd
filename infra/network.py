"""NetworkPolicies: deny everything in the namespace, then allow each declared flow at both of its ends."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra import kube

netv1 = k8s.networking.v1
LabelSelector = k8s.meta.v1.LabelSelectorArgs


@dataclass(frozen=True)
class Flow:
    """`source` pods may open TCP connections to `target` pods on `port` (a container port)."""

    source: str
    target: str
    port: int


class NetworkPolicies(pulumi.ComponentResource):
    """Default deny (ingress and egress), DNS to kube-dns for every pod, and one policy per workload."""

    def __init__(
        self,
        name: str,
        instance: str,
        *,
        workloads: Iterable[str],
        flows: Iterable[Flow],
        public: dict[str, int],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flixtube:app:NetworkPolicies", name, None, opts)
        self._instance = instance
        flows = tuple(flows)
        labels = {"app.kubernetes.io/part-of": kube.PART_OF, "app.kubernetes.io/managed-by": "pulumi"}
        self._policy(
            "default-deny",
            labels,
            netv1.NetworkPolicySpecArgs(pod_selector=LabelSelector(), policy_types=["Ingress", "Egress"]),
        )
        self._policy(
            "allow-dns",
            labels,
            netv1.NetworkPolicySpecArgs(
                pod_selector=LabelSelector(),
                policy_types=["Egress"],
                egress=[
                    netv1.NetworkPolicyEgressRuleArgs(
                        to=[
                            netv1.NetworkPolicyPeerArgs(
                                namespace_selector=LabelSelector(
                                    match_labels={"kubernetes.io/metadata.name": "kube-system"}
                                ),
                                pod_selector=LabelSelector(match_labels={"k8s-app": "kube-dns"}),
                            )
                        ],
                        ports=[
                            netv1.NetworkPolicyPortArgs(protocol=protocol, port=53)
                            for protocol in ("UDP", "TCP")
                        ],
                    )
                ],
            ),
        )
        for workload in workloads:
            self._workload_policy(workload, labels, flows, public.get(workload))
        self.register_outputs({})

    def _peer(self, workload: str) -> netv1.NetworkPolicyPeerArgs:
        return netv1.NetworkPolicyPeerArgs(
            pod_selector=LabelSelector(match_labels=kube.selector_labels(workload, self._instance))
        )

    @staticmethod
    def _ports(port: int) -> list[netv1.NetworkPolicyPortArgs]:
        return [netv1.NetworkPolicyPortArgs(protocol="TCP", port=port)]

    def _workload_policy(
        self, workload: str, labels: dict[str, str], flows: tuple[Flow, ...], public_port: int | None
    ) -> None:
        ingress = [
            netv1.NetworkPolicyIngressRuleArgs(from_=[self._peer(flow.source)], ports=self._ports(flow.port))
            for flow in flows
            if flow.target == workload
        ]
        if public_port is not None:
            # No `from`: any source, including the cloud load balancer, on this one port.
            ingress.append(netv1.NetworkPolicyIngressRuleArgs(ports=self._ports(public_port)))
        egress = [
            netv1.NetworkPolicyEgressRuleArgs(to=[self._peer(flow.target)], ports=self._ports(flow.port))
            for flow in flows
            if flow.source == workload
        ]
        self._policy(
            f"{workload}-flows",
            labels,
            netv1.NetworkPolicySpecArgs(
                pod_selector=LabelSelector(match_labels=kube.selector_labels(workload, self._instance)),
                policy_types=["Ingress", "Egress"],
                ingress=ingress or None,
                egress=egress or None,
            ),
        )

    def _policy(self, name: str, labels: dict[str, str], spec: netv1.NetworkPolicySpecArgs) -> None:
        netv1.NetworkPolicy(
            f"netpol-{name}",
            metadata=kube.object_meta(name, labels),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self),
        )
