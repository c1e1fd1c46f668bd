"""One FlixTube microservice: a Deployment (web container, optional consumer, optional nginx front), its
Service, PDB and HPA."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra import front, kube
from infra.monitoring import METRICS_PORT, METRICS_PORT_NAME

core = k8s.core.v1

HTTP_PORT = 8080
"""Every image listens here (non-root cannot bind 80); Services map port 80 to it."""
SERVICE_PORT = 80
HEARTBEAT_FILE = "/tmp/alive"
HEARTBEAT_MAX_AGE = 60
HEARTBEAT_CHECK = [
    "python",
    "-c",
    f"import os,sys,time; sys.exit(time.time()-os.path.getmtime({HEARTBEAT_FILE!r})>{HEARTBEAT_MAX_AGE})",
]
OUTBOX_VOLUME = "outbox"
OUTBOX_DIR = "/app/outbox"
# Views waiting for the broker, per pod: an emptyDir outlives container restarts (a crash, an OOM kill,
# a failed liveness probe), not the pod's deletion or the node's loss.
OUTBOX_SIZE = "256Mi"
WEB_RESOURCES = kube.Resources("100m", "128Mi", "500m", "384Mi")
WORKER_RESOURCES = kube.Resources("50m", "96Mi", "250m", "256Mi")


@dataclass(frozen=True)
class MicroserviceSpec:
    """What one microservice needs: its name, image, environment and how it scales."""

    name: str
    image: pulumi.Input[str]
    version: str
    env: list[core.EnvVarArgs]
    replicas: int
    worker_module: str | None = None
    public: bool = False
    max_replicas: int | None = None
    disruption_budget: bool = False
    outbox: bool = False  # whether the app keeps an outbox of views on disk (OUTBOX_DIR)
    front: bool = False
    """nginx (infra/front.py) serves the port clients use and the files; the app runs behind it."""


class Microservice(pulumi.ComponentResource):
    """Deployment + Service (+ PodDisruptionBudget, + HorizontalPodAutoscaler) of one microservice."""

    service: core.Service

    def __init__(
        self, spec: MicroserviceSpec, instance: str, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flixtube:app:Microservice", spec.name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = kube.recommended_labels(spec.name, instance, "web", spec.version)
        selector = kube.selector_labels(spec.name, instance)

        containers = [self._web_container(spec)]
        init_containers: list[core.ContainerArgs] = []
        volumes = [kube.empty_dir(kube.TMP_VOLUME)]
        if spec.outbox:
            volumes.append(kube.empty_dir(OUTBOX_VOLUME, OUTBOX_SIZE))
        if spec.front:
            nginx_config = front.config_map(spec.name, labels, child)
            containers = [front.web_container(HTTP_PORT), self._app_container(spec)]
            init_containers.append(front.videos_init_container(spec.image, kube.APP_UID))
            volumes += front.volumes(nginx_config.metadata.name)
        if spec.worker_module is not None:
            containers.append(self._worker_container(spec, spec.worker_module))
        k8s.apps.v1.Deployment(
            spec.name,
            metadata=kube.object_meta(
                spec.name,
                labels,
                kube.checkov_skips(
                    CKV_K8S_43="our images by the immutable git-SHA tag CI pushed (docs/deploy.md), "
                    "official ones by their pinned release tag",
                    CKV_K8S_35="the service contract reads RABBIT and DBHOST from the environment",
                ),
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # With an autoscaler the HPA owns the replica count; setting it here would fight it.
                replicas=None if spec.max_replicas else spec.replicas,
                revision_history_limit=5,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                ),
                template=kube.pod_template(
                    labels,
                    kube.APP_UID,
                    containers,
                    volumes,
                    init_containers=init_containers or None,
                    topology_spread_constraints=[
                        core.TopologySpreadConstraintArgs(
                            max_skew=1,
                            topology_key="topology.kubernetes.io/zone",
                            when_unsatisfiable="ScheduleAnyway",
                            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                        )
                    ],
                ),
            ),
            opts=child,
        )
        self.service = kube.service(
            spec.name,
            labels,
            selector,
            kube.Port("http", SERVICE_PORT, HTTP_PORT),
            opts=child,
            public=spec.public,
        )
        if spec.disruption_budget:
            k8s.policy.v1.PodDisruptionBudget(
                f"{spec.name}-pdb",
                metadata=kube.object_meta(spec.name, labels),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    max_unavailable=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector)
                ),
                opts=child,
            )
        if spec.max_replicas:
            self._autoscaler(spec, labels, spec.max_replicas, child)
        self.register_outputs({})

    @staticmethod
    def _web_container(spec: MicroserviceSpec) -> core.ContainerArgs:
        """The image's default command (gunicorn), probed on /readyz and /healthz."""
        return core.ContainerArgs(
            name="web",
            image=spec.image,
            image_pull_policy=kube.PULL_POLICY,
            ports=[core.ContainerPortArgs(name="http", container_port=HTTP_PORT, protocol="TCP")],
            env=[*spec.env, *_outbox_env(spec)],
            resources=WEB_RESOURCES.args(),
            security_context=kube.container_security(kube.APP_UID),
            readiness_probe=kube.http_probe("/readyz", "http", period=10, failures=3),
            liveness_probe=kube.http_probe("/healthz", "http", period=20, failures=3),
            volume_mounts=[kube.mount(kube.TMP_VOLUME, "/tmp"), *_outbox_mounts(spec)],
        )

    @staticmethod
    def _app_container(spec: MicroserviceSpec) -> core.ContainerArgs:
        """The image's default command (gunicorn) behind the front, on loopback, probed from inside."""
        return core.ContainerArgs(
            name="app",
            image=spec.image,
            image_pull_policy=kube.PULL_POLICY,
            env=[*spec.env, *front.app_env(), *_outbox_env(spec)],
            resources=WEB_RESOURCES.args(),
            security_context=kube.container_security(kube.APP_UID),
            readiness_probe=kube.exec_probe(front.app_probe("/readyz"), period=10, failures=3),
            liveness_probe=kube.exec_probe(front.app_probe("/healthz"), period=20, failures=3),
            volume_mounts=[kube.mount(kube.TMP_VOLUME, "/tmp"), *front.app_mounts(), *_outbox_mounts(spec)],
        )

    @staticmethod
    def _worker_container(spec: MicroserviceSpec, module: str) -> core.ContainerArgs:
        """The consumer from the same image; alive while it touches its heartbeat file; serves its metrics."""
        return core.ContainerArgs(
            name="worker",
            image=spec.image,
            image_pull_policy=kube.PULL_POLICY,
            command=["python", "-m", module],
            ports=[
                core.ContainerPortArgs(name=METRICS_PORT_NAME, container_port=METRICS_PORT, protocol="TCP")
            ],
            env=[
                *spec.env,
                *kube.literal_env({"HEARTBEAT_FILE": HEARTBEAT_FILE, "METRICS_PORT": str(METRICS_PORT)}),
            ],
            resources=WORKER_RESOURCES.args(),
            security_context=kube.container_security(kube.APP_UID),
            # Up to five minutes to reach the broker the first time, then one stale minute restarts it.
            startup_probe=kube.exec_probe(HEARTBEAT_CHECK, period=10, failures=30),
            readiness_probe=kube.exec_probe(HEARTBEAT_CHECK, period=15, failures=2),
            liveness_probe=kube.exec_probe(HEARTBEAT_CHECK, period=30, failures=3),
            volume_mounts=[kube.mount(kube.TMP_VOLUME, "/tmp")],
        )

    def _autoscaler(
        self, spec: MicroserviceSpec, labels: dict[str, str], max_replicas: int, child: pulumi.ResourceOptions
    ) -> None:
        autoscaling = k8s.autoscaling.v2
        autoscaling.HorizontalPodAutoscaler(
            f"{spec.name}-hpa",
            metadata=kube.object_meta(spec.name, labels),
            spec=autoscaling.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=autoscaling.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=spec.name
                ),
                min_replicas=spec.replicas,
                max_replicas=max_replicas,
                metrics=[
                    autoscaling.MetricSpecArgs(
                        type="Resource",
                        resource=autoscaling.ResourceMetricSourceArgs(
                            name="cpu",
                            target=autoscaling.MetricTargetArgs(type="Utilization", average_utilization=70),
                        ),
                    )
                ],
            ),
            opts=child,
        )


def _outbox_env(spec: MicroserviceSpec) -> list[core.EnvVarArgs]:
    """OUTBOX_DIR for the container that runs the app, when the service keeps an outbox."""
    return kube.literal_env({"OUTBOX_DIR": OUTBOX_DIR}) if spec.outbox else []


def _outbox_mounts(spec: MicroserviceSpec) -> list[core.VolumeMountArgs]:
    return [kube.mount(OUTBOX_VOLUME, OUTBOX_DIR)] if spec.outbox else []
