"""Run the Pulumi program under mocks for one stack and print, as JSON, everything it would create.

    python -m tests.infra.capture dev [flixtube:imageTag=abc123 ...] [--echo] [--preview]

Each run is its own process: Pulumi creates the root stack once per process. The stack's settings come from
`Pulumi.<stack>.yaml` exactly as the engine would pass them (`PULUMI_CONFIG`), plus the overrides given.
`--echo` uses bare mocks that only echo inputs back, to prove the program does not depend on ours;
`--preview` runs it as `pulumi preview` would (dry run).
"""

from __future__ import annotations

import base64
import json
import os
import runpy
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]

SUBSCRIPTION = "00000000-0000-0000-0000-00000000c0de"
KUBELET_OBJECT_ID = "11111111-1111-1111-1111-111111111111"
CLUSTER_PRINCIPAL_ID = "22222222-2222-2222-2222-222222222222"
KUBECONFIG_TOKEN = "mock-kubeconfig-client-key-3f9c"
"""Plain-text markers: tests assert these never appear in a non-secret output."""
PASSWORD_PREFIX = "MockGeneratedPassword"
LOAD_BALANCER_IP = "20.50.60.70"

KUBECONFIG = f"""apiVersion: v1
kind: Config
clusters: [{{name: aks, cluster: {{server: "https://flixtube.hcp.westeurope.azmk8s.io:443"}}}}]
users: [{{name: clusterUser, user: {{token: {KUBECONFIG_TOKEN}}}}}]
contexts: [{{name: aks, context: {{cluster: aks, user: clusterUser}}}}]
current-context: aks
"""


def stack_config(stack: str, overrides: dict[str, str]) -> dict[str, str]:
    """The stack file's settings as the engine passes them: strings, with lists and maps as JSON."""
    document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    config = {}
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, bool):
            config[key] = "true" if value else "false"
        elif isinstance(value, (list, dict)):
            config[key] = json.dumps(value)
        else:
            config[key] = str(value)
    return {**config, **overrides}


def _calls(token: str) -> dict[str, Any]:
    if token == "azure-native:authorization:getClientConfig":
        return {
            "clientId": "33333333-3333-3333-3333-333333333333",
            "objectId": "44444444-4444-4444-4444-444444444444",
            "subscriptionId": SUBSCRIPTION,
            "tenantId": "55555555-5555-5555-5555-555555555555",
        }
    if token == "azure-native:containerservice:listManagedClusterUserCredentials":
        encoded = base64.b64encode(KUBECONFIG.encode()).decode()
        return {"kubeconfigs": [{"name": "clusterUser", "value": encoded}]}
    raise AssertionError(f"the program called an unexpected function: {token}")


def _azure_name(name: str, inputs: dict[str, Any]) -> str:
    explicit = [value for key, value in inputs.items() if key.endswith("Name") and key != "resourceGroupName"]
    return explicit[0] if explicit and isinstance(explicit[0], str) else f"{name}1a2b3c"


def _cluster_outputs(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": _azure_name(name, inputs),
        "identity": {"type": "SystemAssigned", "principalId": CLUSTER_PRINCIPAL_ID},
        "identityProfile": {
            "kubeletidentity": {
                "objectId": KUBELET_OBJECT_ID,
                "clientId": "66666666-6666-6666-6666-666666666666",
                "resourceId": "/subscriptions/x/resourceGroups/mc/providers/identity/agentpool",
            }
        },
    }


def _service_outputs(_: str, inputs: dict[str, Any]) -> dict[str, Any]:
    if (inputs.get("spec") or {}).get("type") != "LoadBalancer":
        return {}
    return {"status": {"loadBalancer": {"ingress": [{"ip": LOAD_BALANCER_IP}]}}}


_OUTPUTS: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "azure-native:resources:ResourceGroup": lambda name, inputs: {"name": _azure_name(name, inputs)},
    "azure-native:containerregistry:Registry": lambda name, inputs: {
        "name": _azure_name(name, inputs),
        "loginServer": f"{_azure_name(name, inputs)}.azurecr.io",
    },
    "azure-native:containerservice:ManagedCluster": _cluster_outputs,
    "random:index/randomString:RandomString": lambda _, inputs: {
        "result": "k3x9q2m7"[: int(inputs.get("length", 8))]
    },
    "random:index/randomPassword:RandomPassword": lambda name, _: {
        "result": f"{PASSWORD_PREFIX}{name.replace('-', '')}"
    },
    "kubernetes:core/v1:Service": _service_outputs,
}
"""What Azure, Kubernetes and random would answer beyond the inputs, by resource type."""


def _resource_id(typ: str, name: str, state: dict[str, Any]) -> str:
    if typ.startswith("azure-native:"):
        kind = typ.rsplit(":", maxsplit=1)[-1]
        return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/{kind}/{state.get('name', name)}"
    return f"{name}-id"


def _plain(value: Any) -> Any:
    """JSON-safe copy of deserialized inputs (secrets and unknowns included, as the provider would see)."""
    if isinstance(value, dict):
        if "4dabf18193072939515e22adb298388d" in value:  # a secret's wire form
            return _plain(value.get("value"))
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # protobuf carries every number as a double
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def run(stack: str, overrides: dict[str, str], *, echo: bool, preview: bool) -> dict[str, Any]:
    os.environ["PULUMI_CONFIG"] = json.dumps(stack_config(stack, overrides))
    import pulumi
    from pulumi.runtime.settings import get_root_resource
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    recorded: list[dict[str, Any]] = []

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            inputs = _plain(args.inputs)
            extra = {} if echo or args.typ not in _OUTPUTS else _OUTPUTS[args.typ](args.name, inputs)
            state = {**inputs, **extra}
            resource_id = f"{args.name}_id" if echo else _resource_id(args.typ, args.name, state)
            recorded.append(
                {"type": args.typ, "name": args.name, "provider": args.provider or None, "inputs": inputs}
            )
            return resource_id, state

        def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
            return _calls(args.token)

    mocks = Mocks()
    monitor = pulumi.runtime.mocks.MockMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="flixtube", stack=stack, preview=preview, monitor=monitor)
    _sync_await(run_pulumi_func(lambda: runpy.run_path(str(ROOT / "infra"), run_name="__main__")))

    urns = {(urn.split("::")[2].split("$")[-1], urn.split("::")[3]): urn for urn in monitor.resources}
    for resource in recorded:
        resource["urn"] = urns[(resource["type"], resource["name"])]
        resource["parent_types"] = resource["urn"].split("::")[2].split("$")[:-1]

    outputs = {}
    root = get_root_resource()
    for name, value in getattr(root, "outputs", {}).items():
        output = pulumi.Output.from_input(value)
        outputs[name] = {
            "secret": _sync_await(output.is_secret()),
            "value": _plain(_sync_await(output.future())),
        }
    return {"stack": stack, "resources": recorded, "outputs": outputs}


@dataclass
class Captured:
    """What one run of the program registered, with the lookups the tests share."""

    stack: str
    resources: list[dict[str, Any]]
    outputs: dict[str, dict[str, Any]]

    def of_type(self, typ: str) -> list[dict[str, Any]]:
        return [resource for resource in self.resources if resource["type"] == typ]

    def one(self, typ: str) -> dict[str, Any]:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, found {[resource['name'] for resource in found]}"
        return found[0]

    def kubernetes(self) -> list[dict[str, Any]]:
        """Every Kubernetes object the program would send (not the provider itself)."""
        return [resource for resource in self.resources if resource["type"].startswith("kubernetes:")]

    def manifests(self, kind: str | None = None) -> list[dict[str, Any]]:
        found = [resource["inputs"] for resource in self.kubernetes()]
        return [manifest for manifest in found if kind is None or manifest["kind"] == kind]

    def manifest(self, kind: str, name: str) -> dict[str, Any]:
        found = [manifest for manifest in self.manifests(kind) if manifest["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def workloads(self) -> list[dict[str, Any]]:
        return [manifest for manifest in self.manifests() if manifest["kind"] in WORKLOAD_KINDS]

    def containers(self) -> list[tuple[str, dict[str, Any]]]:
        """(workload name, container) for every container of every workload."""
        return [
            (workload["metadata"]["name"], container)
            for workload in self.workloads()
            for container in workload["spec"]["template"]["spec"]["containers"]
        ]

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(resource["type"] for resource in self.resources).items()))


WORKLOAD_KINDS = ("Deployment", "StatefulSet")


def start(stack: str, overrides: dict[str, str], flags: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    """Start one capture in its own process (each needs a fresh Pulumi root stack)."""
    command = [sys.executable, "-m", "tests.infra.capture", stack]
    command += [f"{key}={value}" for key, value in overrides.items()]
    command += list(flags)
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str], timeout: float = 180) -> Captured:
    stdout, stderr = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise AssertionError(f"{process.args} failed with {process.returncode}:\n{stderr}")
    data = json.loads(stdout)
    return Captured(stack=data["stack"], resources=data["resources"], outputs=data["outputs"])


def main(argv: list[str]) -> None:
    words = [word for word in argv if not word.startswith("--")]
    overrides = dict(word.split("=", 1) for word in words[1:])
    result = run(words[0], overrides, echo="--echo" in argv, preview="--preview" in argv)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
