"""Which connections a set of NetworkPolicies lets through, computed the way Kubernetes defines it.

A connection from A to B on a port is allowed when A's egress allows it and B's ingress allows it. A pod
that no policy of a direction selects is open in that direction; once one selects it, only what some rule
of that direction allows gets through. Endpoints outside our namespace (kube-dns, the internet) are not
governed by our policies on their own side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

INTERNET = "internet"


@dataclass(frozen=True)
class Endpoint:
    name: str
    namespace: str | None  # None: outside the cluster
    labels: dict[str, str] = field(default_factory=dict)
    ports: tuple[tuple[str, int, str], ...] = ()  # (name, number, protocol) it listens on

    def __hash__(self) -> int:
        return hash(self.name)


Flow = tuple[str, str, int, str]  # source, destination, port, protocol


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector: an empty one selects everything."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels[key] in values,
            "NotIn": not present or labels[key] not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not ok:
            return False
    return True


class Cluster:
    def __init__(self, policies: list[dict[str, Any]], namespaces: dict[str, dict[str, str]]) -> None:
        self.policies = policies
        self.namespaces = namespaces

    def _peer_matches(self, peer: dict[str, Any], policy_namespace: str, other: Endpoint) -> bool:
        if "ipBlock" in peer:
            return other.namespace is None  # any CIDR stands for addresses outside the cluster here
        if other.namespace is None:
            return False
        if "namespaceSelector" in peer:
            namespace_ok = selects(peer["namespaceSelector"], self.namespaces.get(other.namespace, {}))
        else:
            namespace_ok = other.namespace == policy_namespace
        return namespace_ok and selects(peer.get("podSelector"), other.labels)

    @staticmethod
    def _port_matches(
        rule_ports: list[dict[str, Any]] | None, target: Endpoint, port: int, protocol: str
    ) -> bool:
        if not rule_ports:
            return True
        for entry in rule_ports:
            if entry.get("protocol", "TCP") != protocol:
                continue
            wanted = entry.get("port")
            if wanted is None:
                return True
            if isinstance(wanted, str):
                wanted = next((number for name, number, _ in target.ports if name == wanted), None)
            if wanted is not None and wanted <= port <= entry.get("endPort", wanted):
                return True
        return False

    def _allowed(
        self,
        direction: str,
        subject: Endpoint,
        other: Endpoint,
        *,
        target: Endpoint,
        port: int,
        protocol: str,
    ) -> bool:
        """Does `subject`'s side let it through (Ingress: other -> subject; Egress: subject -> other)?"""
        if subject.namespace is None:
            return True
        governing = [
            policy
            for policy in self.policies
            if policy["metadata"]["namespace"] == subject.namespace
            and direction in policy["spec"].get("policyTypes", ["Ingress"])
            and selects(policy["spec"].get("podSelector"), subject.labels)
        ]
        if not governing:
            return True
        rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in governing:
            for rule in policy["spec"].get(rules_key) or []:
                peers = rule.get(peers_key)
                peer_ok = not peers or any(
                    self._peer_matches(peer, policy["metadata"]["namespace"], other) for peer in peers
                )
                if peer_ok and self._port_matches(rule.get("ports"), target, port, protocol):
                    return True
        return False

    def flows(self, endpoints: Iterable[Endpoint]) -> set[Flow]:
        endpoints = list(endpoints)
        allowed: set[Flow] = set()
        for source in endpoints:
            for target in endpoints:
                if source is target:
                    continue
                for _, port, protocol in target.ports:
                    connection = {"target": target, "port": port, "protocol": protocol}
                    if self._allowed("Egress", source, target, **connection) and self._allowed(
                        "Ingress", target, source, **connection
                    ):
                        allowed.add((source.name, target.name, port, protocol))
        return allowed
