"""The Kubernetes workloads under mocks: names, exposure, containers, environment, secrets, scaling."""

from __future__ import annotations

import re

import pytest

from infra.config import COLLECTOR_IMAGE
from infra.tracing import tracing_env
from tests.containers.build_files import compose
from tests.infra.capture import PASSWORD_PREFIX, ROOT, Captured
from tests.infra.conftest import IMAGE_TAG

SERVICES = ("video-streaming", "history", "recommendations")
CONSUMERS = ("history", "recommendations")
BACKING_IMAGES = {"rabbit": "rabbitmq:4.1.4-management", "db": "mongo:8.0.12"}
PINNED_IMAGES = {**BACKING_IMAGES, "otel-collector": COLLECTOR_IMAGE}
SERVICE_PORTS = {"rabbit": 5672, "db": 27017, "video-streaming": 80, "history": 80, "recommendations": 80}
SERVICE_PORTS["otel-collector"] = 4318
CONTRACT_ENV = {
    # Required by the contract (names from CONTRACT.md), plus the optional queue name.
    "video-streaming": {"PORT", "RABBIT", "VIEWED_MESSAGING", "HISTORY_URL"},
    "history": {"PORT", "RABBIT", "VIEWED_MESSAGING", "DBHOST", "DBNAME", "VIEWED_QUEUE"},
    "recommendations": {"PORT", "RABBIT", "VIEWED_MESSAGING", "DBHOST", "DBNAME", "VIEWED_QUEUE"},
}
KNOWN_ENV = {"PORT", "RABBIT", "VIEWED_MESSAGING", "HISTORY_URL", "VIDEOS_DIR", "DBHOST", "DBNAME"}
KNOWN_ENV |= {
    "VIEWED_QUEUE",
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "HEARTBEAT_FILE",
    "APP_PORT",
    "OUTBOX_DIR",
    "METRICS_PORT",
}
KNOWN_ENV |= set(tracing_env(0.1))
FRONT_IMAGE = "nginxinc/nginx-unprivileged:1.29.3-alpine"
FRONT_ENV = {"PORT": "8080", "APP_PORT": "8081", "VIDEOS_DIR": "/videos", "NGINX_ENVSUBST_OUTPUT_DIR": "/tmp"}
TEMPLATE = ROOT / "services/video-streaming/nginx/nginx.conf.template"
SECRET_ENV = {"RABBIT", "DBHOST"}


def env_of(container: dict) -> dict[str, dict]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def microservices(captured: Captured) -> list[dict]:
    """The Deployments of our own services (the trace collector is a Deployment too)."""
    return [m for m in captured.manifests("Deployment") if m["metadata"]["name"] in SERVICES]


def test_everything_lives_in_the_flixtube_namespace(deployed: Captured):
    namespace = deployed.manifest("Namespace", "flixtube")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for manifest in deployed.manifests():
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"]["namespace"] == "flixtube", manifest["metadata"]["name"]


def test_services_have_the_names_pods_dial_and_only_video_streaming_is_public(deployed: Captured):
    services = {manifest["metadata"]["name"]: manifest["spec"] for manifest in deployed.manifests("Service")}
    assert set(services) == set(SERVICE_PORTS)
    for name, spec in services.items():
        assert [port["port"] for port in spec["ports"]] == [SERVICE_PORTS[name]]
        assert spec["type"] == ("LoadBalancer" if name == "video-streaming" else "ClusterIP"), name
        assert all("nodePort" not in port for port in spec["ports"])
    for manifest in deployed.manifests():
        assert manifest["kind"] not in ("Ingress", "Gateway", "HTTPRoute")


def test_microservices_are_deployments_and_backing_services_stateful_sets(deployed: Captured):
    deployments = {manifest["metadata"]["name"] for manifest in deployed.manifests("Deployment")}
    stateful = {manifest["metadata"]["name"]: manifest for manifest in deployed.manifests("StatefulSet")}
    assert deployments == {*SERVICES, "otel-collector"}
    assert set(stateful) == set(BACKING_IMAGES)
    for name, manifest in stateful.items():
        assert manifest["spec"]["serviceName"] == name
        (claim,) = manifest["spec"]["volumeClaimTemplates"]
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert claim["spec"]["resources"]["requests"]["storage"].endswith("Gi")
        mounts = {mount["name"] for mount in pod_spec(manifest)["containers"][0]["volumeMounts"]}
        assert claim["metadata"]["name"] in mounts
    assert deployed.manifests("PersistentVolumeClaim") == []  # standalone PVCs deadlock on AKS


def containers_of(workload: dict) -> dict[str, dict]:
    return {c["name"]: c for c in pod_spec(workload)["containers"]}


def test_images_are_pinned(deployed: Captured):
    registry = deployed.outputs["registryLoginServer"]["value"]
    for workload, container in deployed.containers():
        image = container["image"]
        assert not image.endswith(":latest") and ":" in image.rsplit("/", 1)[-1]
        if workload in PINNED_IMAGES:
            assert image == PINNED_IMAGES[workload]
        elif (workload, container["name"]) == ("video-streaming", "web"):
            assert image == FRONT_IMAGE
        else:
            assert image == f"{registry}/{workload}:{IMAGE_TAG}"


def test_every_container_has_probes_resources_and_the_restricted_context(deployed: Captured):
    for workload, container in deployed.containers():
        where = f"{workload}/{container['name']}"
        assert "readinessProbe" in container and "livenessProbe" in container, where
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, where
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] > 0, where
        assert context["allowPrivilegeEscalation"] is False and context["privileged"] is False, where
        assert context["capabilities"] == {"drop": ["ALL"]}, where
        assert context["readOnlyRootFilesystem"] is True, where
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
    for workload in deployed.workloads():
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(spec)


def test_web_containers_listen_on_8080_with_health_endpoints(deployed: Captured):
    for workload in microservices(deployed):
        web = containers_of(workload)["web"]
        assert web["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert env_of(web)["PORT"]["value"] == "8080"
        if workload["metadata"]["name"] == "video-streaming":
            continue  # nginx: below
        assert "command" not in web and "args" not in web  # the image's gunicorn CMD
        assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_video_streaming_is_nginx_in_front_of_its_app_in_one_pod(deployed: Captured):
    """nginx (the unprivileged image) on the port the Service targets, with the front's template and the
    compose command; the app on loopback APP_PORT, probed from inside; the videos in one volume, filled
    from the app image before either starts, read-only to both."""
    workload = deployed.manifest("Deployment", "video-streaming")
    pod = pod_spec(workload)
    web, app = containers_of(workload)["web"], containers_of(workload)["app"]
    assert web["args"] == compose("compose.prod.yaml")["services"]["video-streaming"]["command"]
    assert "command" not in web  # the image's entrypoint renders the template
    assert {name: entry["value"] for name, entry in env_of(web).items()} == FRONT_ENV
    assert web["livenessProbe"]["httpGet"] == {"path": "/nginx-healthz", "port": "http"}
    assert "command" not in app and "args" not in app and "ports" not in app  # gunicorn, loopback only
    assert env_of(app)["APP_PORT"]["value"] == FRONT_ENV["APP_PORT"]
    assert env_of(app)["VIDEOS_DIR"]["value"] == FRONT_ENV["VIDEOS_DIR"]
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        check = app[probe]["exec"]["command"]
        assert check[:2] == ["python", "-c"] and f"http://127.0.0.1:8081{path}" in check[2]
    service = deployed.manifest("Service", "video-streaming")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [web["ports"][0]["containerPort"]]

    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {c["name"]: {m["mountPath"]: m for m in c["volumeMounts"]} for c in (web, app)}
    (init,) = pod["initContainers"]
    assert init["image"] == app["image"]
    assert "/app/videos" in init["command"][-1] and "symlinks=True" in init["command"][-1]
    (videos,) = [m for m in init["volumeMounts"] if m["mountPath"] == "/videos"]
    assert "emptyDir" in volumes[videos["name"]]
    for container in ("web", "app"):
        assert mounts[container]["/videos"]["name"] == videos["name"]
        assert mounts[container]["/videos"]["readOnly"] is True
    assert mounts["web"]["/tmp"]["name"] != mounts["app"]["/tmp"]["name"]
    config = volumes[mounts["web"]["/etc/nginx/templates"]["name"]]["configMap"]["name"]
    assert deployed.manifest("ConfigMap", config)["data"] == {TEMPLATE.name: TEMPLATE.read_text()}


def test_consumers_run_beside_the_web_container_with_a_heartbeat_probe(deployed: Captured):
    for workload in microservices(deployed):
        name = workload["metadata"]["name"]
        containers = {c["name"]: c for c in pod_spec(workload)["containers"]}
        if name not in CONSUMERS:
            assert set(containers) == ({"web", "app"} if name == "video-streaming" else {"web"})
            continue
        worker = containers["worker"]
        assert worker["image"] == containers["web"]["image"]
        assert worker["command"] == ["python", "-m", f"{name}.worker"]
        assert env_of(worker)["HEARTBEAT_FILE"]["value"] == "/tmp/alive"
        check = worker["livenessProbe"]["exec"]["command"]
        assert check[:2] == ["python", "-c"] and "/tmp/alive" in check[2] and ">60" in check[2]
        assert {m["mountPath"] for m in worker["volumeMounts"]} == {"/tmp"}


def test_environment_matches_the_contract(deployed: Captured):
    for workload in microservices(deployed):
        name = workload["metadata"]["name"]
        for container in pod_spec(workload)["containers"]:
            env = env_of(container)
            if container["image"] == FRONT_IMAGE:
                continue  # nginx: its own settings (above)
            assert CONTRACT_ENV[name] <= set(env), f"{name}/{container['name']}"
            assert set(env) <= KNOWN_ENV, f"{name}/{container['name']}: {set(env) - KNOWN_ENV}"
            assert env["VIEWED_MESSAGING"]["value"] == "fanout"
            for secret in SECRET_ENV & set(env):
                assert "value" not in env[secret] and "secretKeyRef" in env[secret]["valueFrom"]
            if name in CONSUMERS:
                assert env["DBNAME"]["value"] == name
                assert env["VIEWED_QUEUE"]["value"] == f"{name}.viewed"
            else:
                assert env["HISTORY_URL"]["value"] == "http://history"


def test_generated_credentials_build_the_connection_urls(deployed: Captured):
    secrets = {m["metadata"]["name"]: m["stringData"] for m in deployed.manifests("Secret")}
    rabbit, db = secrets["rabbit-credentials"], secrets["db-credentials"]
    for credentials in (rabbit, db):
        assert credentials["password"].startswith(PASSWORD_PREFIX)  # from pulumi-random
        assert credentials["username"] not in ("guest", "admin", "root")
    assert rabbit["url"] == f"amqp://{rabbit['username']}:{rabbit['password']}@rabbit:5672"
    assert db["url"] == f"mongodb://{db['username']}:{db['password']}@db:27017/?authSource=admin"
    assert rabbit["password"] != db["password"]


def test_backing_services_read_their_credentials_from_the_secrets(deployed: Captured):
    expected = {
        "rabbit": ("rabbit-credentials", {"RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"}),
        "db": ("db-credentials", {"MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD"}),
    }
    for workload, container in deployed.containers():
        if workload in expected:
            secret, names = expected[workload]
            env = env_of(container)
            assert set(env) == names
            assert {entry["valueFrom"]["secretKeyRef"]["name"] for entry in env.values()} == {secret}


def test_no_plaintext_password_in_any_workload_or_service(deployed: Captured):
    for manifest in deployed.manifests():
        if manifest["kind"] != "Secret":
            assert PASSWORD_PREFIX not in str(manifest), manifest["metadata"]["name"]
            assert not re.search(r"guest:guest|://[^/@\s]+:[^/@\s]+@", str(manifest))


def test_recommended_labels_everywhere(deployed: Captured):
    for manifest in deployed.workloads() + deployed.manifests("Service"):
        labels = manifest["metadata"]["labels"]
        for key in ("name", "instance", "component", "version", "part-of", "managed-by"):
            assert f"app.kubernetes.io/{key}" in labels, manifest["metadata"]["name"]
        assert labels["app.kubernetes.io/part-of"] == "flixtube"


def test_rolling_updates_never_drop_below_the_replica_count(deployed: Captured):
    for workload in microservices(deployed):
        assert workload["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_replicas_budgets_and_autoscaler_per_stack(stack: str, captures: dict[str, Captured]):
    captured = captures[stack]
    deployments = {m["metadata"]["name"]: m for m in microservices(captured)}
    budgets = {m["metadata"]["name"]: m for m in captured.manifests("PodDisruptionBudget")}
    autoscalers = captured.manifests("HorizontalPodAutoscaler")
    if stack == "dev":
        assert budgets == {} and autoscalers == []
        assert all(d["spec"]["replicas"] == 1 for d in deployments.values())
        return
    assert set(budgets) == set(SERVICES)
    assert all(b["spec"]["maxUnavailable"] == 1 for b in budgets.values())
    (autoscaler,) = autoscalers
    assert autoscaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "video-streaming",
    }
    assert 2 <= autoscaler["spec"]["minReplicas"] < autoscaler["spec"]["maxReplicas"]
    assert "replicas" not in deployments["video-streaming"]["spec"]  # the HPA owns it
    assert (
        deployments["history"]["spec"]["replicas"] == deployments["recommendations"]["spec"]["replicas"] == 2
    )


def test_video_streaming_keeps_its_outbox_on_a_volume_that_outlives_the_container(deployed: Captured):
    [workload] = [w for w in deployed.manifests("Deployment") if w["metadata"]["name"] == "video-streaming"]
    containers = {c["name"]: c for c in pod_spec(workload)["containers"]}
    app = containers["app"]  # the app behind the nginx front writes the views, not nginx
    assert env_of(app)["OUTBOX_DIR"]["value"] == "/app/outbox"
    assert {"name": "outbox", "mountPath": "/app/outbox"} in app["volumeMounts"]
    others = [c for c in containers.values() if c is not app]
    assert all("outbox" not in {m["name"] for m in c["volumeMounts"]} for c in others)
    volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
    assert volumes["outbox"]["emptyDir"]["sizeLimit"] == "256Mi"  # the pod's: kept across container restarts
    workloads = [w for w in deployed.manifests("Deployment") if w["metadata"]["name"] != "video-streaming"]
    assert all("outbox" not in {v["name"] for v in pod_spec(w)["volumes"]} for w in workloads)


def test_rabbit_loads_the_definitions_its_init_container_writes_from_the_secret(deployed: Captured):
    registry = deployed.outputs["registryLoginServer"]["value"]
    [rabbit] = [w for w in deployed.manifests("StatefulSet") if w["metadata"]["name"] == "rabbit"]
    spec = pod_spec(rabbit)
    [writer] = spec["initContainers"]
    assert writer["image"] == f"{registry}/history:{IMAGE_TAG}"
    assert writer["command"] == ["python", "-m", "flixtube_common.broker_definitions", "/definitions"]
    env = env_of(writer)
    assert {name: entry["valueFrom"]["secretKeyRef"] for name, entry in env.items()} == {
        "RABBIT_USER": {"name": "rabbit-credentials", "key": "username", "optional": False},
        "RABBIT_PASSWORD": {"name": "rabbit-credentials", "key": "password", "optional": False},
    }
    assert writer["securityContext"]["readOnlyRootFilesystem"] and writer["resources"]["limits"]
    mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["definitions"] == {
        "name": "definitions",
        "mountPath": "/etc/rabbitmq/definitions",
        "readOnly": True,
    }
    config = deployed.manifest("ConfigMap", "rabbit-definitions-conf")
    assert config["data"] == {
        "20-flixtube-definitions.conf": "load_definitions = /etc/rabbitmq/definitions\n"
    }
    assert mounts["definitions-conf"]["subPath"] == "20-flixtube-definitions.conf"
