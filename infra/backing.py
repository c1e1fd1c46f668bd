"""Stateful backing services (RabbitMQ as `rabbit`, MongoDB as `db`) and their generated credentials."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra import kube

core = k8s.core.v1

BACKING_UID = 999
"""The `rabbitmq` and `mongodb` users of the official images own their data directories as uid 999."""

DEFINITIONS_DIR = "/etc/rabbitmq/definitions"
DEFINITIONS_CONF = "20-flixtube-definitions.conf"
DEFINITIONS_RESOURCES = kube.Resources("50m", "64Mi", "250m", "128Mi")


class Credentials(pulumi.ComponentResource):
    """A generated password and a Secret with `username`, `password` and the service's connection `url`."""

    secret_name: str

    def __init__(
        self,
        name: str,
        username: str,
        url: Callable[[str, str], str],
        labels: dict[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flixtube:app:Credentials", name, None, opts)
        # Letters and digits only, so the password needs no escaping inside a URL.
        password = random.RandomPassword(
            f"{name}-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        self.secret_name = name
        core.Secret(
            name,
            metadata=kube.object_meta(name, labels),
            type="Opaque",
            string_data={
                "username": username,
                "password": password.result,
                "url": password.result.apply(lambda secret: url(username, secret)),
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"secretName": self.secret_name})


@dataclass(frozen=True)
class BackingSpec:
    """What differs between the broker and the database."""

    name: str
    component: str
    image: str
    port_name: str
    port: int
    data_path: str
    storage_gi: int
    user_env: str
    password_env: str
    resources: kube.Resources
    extra_ports: tuple[tuple[str, int], ...] = ()
    scratch_paths: tuple[str, ...] = ("/tmp",)
    # RabbitMQ only: an image with flixtube_common, whose init container writes the broker's definitions.
    definitions_image: pulumi.Input[str] | None = None


class BackingService(pulumi.ComponentResource):
    """A one-replica StatefulSet with a persistent volume claim template, and its ClusterIP Service."""

    def __init__(
        self,
        spec: BackingSpec,
        instance: str,
        credentials: Credentials,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flixtube:app:BackingService", spec.name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        version = spec.image.rsplit(":", 1)[1]
        labels = kube.recommended_labels(spec.name, instance, spec.component, version)
        selector = kube.selector_labels(spec.name, instance)
        scratch = [(f"scratch-{index}", path) for index, path in enumerate(spec.scratch_paths)]

        container = core.ContainerArgs(
            name=spec.name,
            image=spec.image,
            image_pull_policy=kube.PULL_POLICY,
            ports=[
                core.ContainerPortArgs(name=port_name, container_port=port, protocol="TCP")
                for port_name, port in ((spec.port_name, spec.port), *spec.extra_ports)
            ],
            env=[
                kube.secret_env(spec.user_env, credentials.secret_name, "username"),
                kube.secret_env(spec.password_env, credentials.secret_name, "password"),
            ],
            resources=spec.resources.args(),
            security_context=kube.container_security(BACKING_UID),
            startup_probe=kube.tcp_probe(spec.port_name, period=5, failures=60),
            readiness_probe=kube.tcp_probe(spec.port_name, period=10, failures=3),
            liveness_probe=kube.tcp_probe(spec.port_name, period=20, failures=6),
            volume_mounts=[
                kube.mount("data", spec.data_path),
                *(kube.mount(volume, path) for volume, path in scratch),
                *(self._definitions_mounts() if spec.definitions_image is not None else []),
            ],
        )
        init, volumes = [], [kube.empty_dir(volume) for volume, _ in scratch]
        if spec.definitions_image is not None:
            init = [self._definitions_writer(spec.definitions_image, credentials)]
            volumes += self._definitions_volumes(spec.name, labels, child)
        self.stateful_set = k8s.apps.v1.StatefulSet(
            spec.name,
            metadata=kube.object_meta(
                spec.name,
                labels,
                kube.checkov_skips(
                    CKV_K8S_40="the official image owns its data directory as uid 999",
                    CKV_K8S_43="official image pinned by version tag; digests would block patch updates",
                    CKV_K8S_35="the image reads its initial credentials from these variables only",
                ),
            ),
            spec=k8s.apps.v1.StatefulSetSpecArgs(
                service_name=spec.name,
                replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                template=kube.pod_template(
                    labels,
                    BACKING_UID,
                    [container],
                    volumes,
                    init_containers=init,
                    termination_grace_period_seconds=60,
                ),
                volume_claim_templates=[
                    core.PersistentVolumeClaimArgs(
                        metadata=k8s.meta.v1.ObjectMetaArgs(name="data", labels=selector),
                        spec=core.PersistentVolumeClaimSpecArgs(
                            access_modes=["ReadWriteOnce"],
                            resources=core.VolumeResourceRequirementsArgs(
                                requests={"storage": f"{spec.storage_gi}Gi"}
                            ),
                        ),
                    )
                ],
            ),
            opts=child,
        )
        self.service = kube.service(
            spec.name, labels, selector, kube.Port(spec.port_name, spec.port, spec.port), opts=child
        )
        self.register_outputs({})

    # RabbitMQ loads definitions at every start (the contract's queues and exchange, kept even before
    # any consumer ran). A node that loads definitions creates no default user, so the init container
    # writes the user too, from the credentials Secret, with only a salted hash of the password.

    @staticmethod
    def _definitions_writer(image: pulumi.Input[str], credentials: Credentials) -> core.ContainerArgs:
        return core.ContainerArgs(
            name="definitions",
            image=image,
            image_pull_policy=kube.PULL_POLICY,
            command=["python", "-m", "flixtube_common.broker_definitions", "/definitions"],
            env=[
                kube.secret_env("RABBIT_USER", credentials.secret_name, "username"),
                kube.secret_env("RABBIT_PASSWORD", credentials.secret_name, "password"),
            ],
            resources=DEFINITIONS_RESOURCES.args(),
            security_context=kube.container_security(BACKING_UID),
            volume_mounts=[kube.mount("definitions", "/definitions")],
        )

    @staticmethod
    def _definitions_mounts() -> list[core.VolumeMountArgs]:
        return [
            core.VolumeMountArgs(name="definitions", mount_path=DEFINITIONS_DIR, read_only=True),
            core.VolumeMountArgs(
                name="definitions-conf",
                mount_path=f"/etc/rabbitmq/conf.d/{DEFINITIONS_CONF}",
                sub_path=DEFINITIONS_CONF,
                read_only=True,
            ),
        ]

    @staticmethod
    def _definitions_volumes(
        name: str, labels: dict[str, str], child: pulumi.ResourceOptions
    ) -> list[core.VolumeArgs]:
        config = core.ConfigMap(
            f"{name}-definitions-conf",
            metadata=kube.object_meta(f"{name}-definitions-conf", labels),
            data={DEFINITIONS_CONF: f"load_definitions = {DEFINITIONS_DIR}\n"},
            opts=child,
        )
        return [
            kube.empty_dir("definitions", "1Mi"),
            core.VolumeArgs(
                name="definitions-conf",
                config_map=core.ConfigMapVolumeSourceArgs(name=config.metadata.apply(lambda meta: meta.name)),
            ),
        ]


def rabbit_spec(image: str, storage_gi: int, definitions_image: pulumi.Input[str]) -> BackingSpec:
    """RabbitMQ: its node name follows the pod's stable hostname, so the StatefulSet keeps its queues.

    Its definitions (queues, exchange and user) are written at each start by an init container of
    `definitions_image` (history's, which has the shared package)."""
    return BackingSpec(
        name="rabbit",
        component="broker",
        image=image,
        port_name="amqp",
        port=5672,
        extra_ports=(("management", 15672),),
        data_path="/var/lib/rabbitmq",
        storage_gi=storage_gi,
        user_env="RABBITMQ_DEFAULT_USER",
        password_env="RABBITMQ_DEFAULT_PASS",
        resources=kube.Resources("100m", "256Mi", "1", "1Gi"),
        definitions_image=definitions_image,
    )


def db_spec(image: str, storage_gi: int) -> BackingSpec:
    """MongoDB: the root user is created from the Secret on first start (so clients need authSource=admin)."""
    return BackingSpec(
        name="db",
        component="database",
        image=image,
        port_name="mongodb",
        port=27017,
        data_path="/data/db",
        storage_gi=storage_gi,
        user_env="MONGO_INITDB_ROOT_USERNAME",
        password_env="MONGO_INITDB_ROOT_PASSWORD",
        resources=kube.Resources("100m", "512Mi", "1", "1Gi"),
        scratch_paths=("/tmp", "/data/configdb"),
    )
