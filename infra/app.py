"""The app on the cluster: namespace, credentials, broker, database, microservices, network policies."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import kube
from infra.backing import BackingService, Credentials, db_spec, rabbit_spec
from infra.config import NAMESPACE, Settings
from infra.microservice import HTTP_PORT, Microservice, MicroserviceSpec
from infra.monitoring import Scraping
from infra.network import Flow, NetworkPolicies
from infra.tracing import COLLECTOR, OTLP_HTTP_PORT, Collector, tracing_env

VIDEO_STREAMING = "video-streaming"
HISTORY = "history"
RECOMMENDATIONS = "recommendations"
RABBIT = "rabbit"
DB = "db"
AMQP_PORT = 5672
MONGO_PORT = 27017

FLOWS = (
    Flow(VIDEO_STREAMING, RABBIT, AMQP_PORT),
    Flow(VIDEO_STREAMING, HISTORY, HTTP_PORT),  # "viewed" over HTTP when VIEWED_MESSAGING=http
    Flow(HISTORY, RABBIT, AMQP_PORT),
    Flow(HISTORY, DB, MONGO_PORT),
    Flow(RECOMMENDATIONS, RABBIT, AMQP_PORT),
    Flow(RECOMMENDATIONS, DB, MONGO_PORT),
    *(Flow(service, COLLECTOR, OTLP_HTTP_PORT) for service in (VIDEO_STREAMING, HISTORY, RECOMMENDATIONS)),
)
"""Every connection the app makes inside the namespace; NetworkPolicies allow these and nothing else."""

POD_SECURITY = ("enforce", "audit", "warn")
"""The namespace enforces the `restricted` Pod Security Standard, so a looser pod is refused at admission."""


def public_url(status: Any) -> str | None:
    """`http://<address>` of a LoadBalancer Service once Azure has given it one."""
    ingress = (status.load_balancer.ingress if status and status.load_balancer else None) or []
    address = next((entry.ip or entry.hostname for entry in ingress if entry.ip or entry.hostname), None)
    return f"http://{address}" if address else None


class FlixTube(pulumi.ComponentResource):
    """Everything in the `flixtube` namespace. Every child uses the cluster's explicit provider."""

    video_streaming_url: pulumi.Output[str | None]

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        registry: pulumi.Input[str],
        provider: k8s.Provider,
        pull_grant: pulumi.Resource,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            "flixtube:app:FlixTube",
            name,
            None,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(providers=[provider])),
        )
        instance = f"flixtube-{settings.stack}"
        labels = {"app.kubernetes.io/part-of": kube.PART_OF, "app.kubernetes.io/instance": instance}
        namespace = k8s.core.v1.Namespace(
            NAMESPACE,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NAMESPACE,
                labels={
                    **labels,
                    **{f"pod-security.kubernetes.io/{mode}": "restricted" for mode in POD_SECURITY},
                },
            ),
            # Everything else depends on the namespace, so no pod starts before nodes may pull images.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[pull_grant]),
        )
        policies = NetworkPolicies(
            "network-policies",
            instance,
            workloads=(VIDEO_STREAMING, HISTORY, RECOMMENDATIONS, RABBIT, DB, COLLECTOR),
            flows=FLOWS,
            public={VIDEO_STREAMING: HTTP_PORT},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
        )
        # No pod runs before the namespace denies all traffic but the declared flows.
        guarded = pulumi.ResourceOptions(parent=self, depends_on=[namespace, policies])
        microservices = {**labels, "app.kubernetes.io/component": "web"}
        Scraping("scraping", labels, microservices, HTTP_PORT, opts=guarded)
        Collector(settings.collector_image, instance, opts=guarded)

        rabbit_credentials = Credentials(
            "rabbit-credentials",
            "flixtube",
            lambda user, password: f"amqp://{user}:{password}@{RABBIT}:{AMQP_PORT}",
            labels,
            opts=guarded,
        )
        db_credentials = Credentials(
            "db-credentials",
            "flixtube",
            lambda user, password: f"mongodb://{user}:{password}@{DB}:{MONGO_PORT}/?authSource=admin",
            labels,
            opts=guarded,
        )
        backing = [
            BackingService(
                rabbit_spec(
                    settings.rabbit_image,
                    settings.rabbit_storage_gi,
                    pulumi.Output.from_input(registry).apply(
                        lambda server: f"{server}/{HISTORY}:{settings.image_tag or ''}"
                    ),
                ),
                instance,
                rabbit_credentials,
                opts=guarded,
            ),
            BackingService(
                db_spec(settings.mongo_image, settings.db_storage_gi), instance, db_credentials, opts=guarded
            ),
        ]
        video_streaming = self._microservices(
            settings,
            registry,
            instance,
            rabbit_secret=rabbit_credentials.secret_name,
            db_secret=db_credentials.secret_name,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, policies, *backing]),
        )
        self.video_streaming_url = video_streaming.service.status.apply(public_url)
        self.register_outputs({"videoStreamingUrl": self.video_streaming_url})

    @staticmethod
    def _microservices(
        settings: Settings,
        registry: pulumi.Input[str],
        instance: str,
        *,
        rabbit_secret: str,
        db_secret: str,
        opts: pulumi.ResourceOptions,
    ) -> Microservice:
        """video-streaming, history and recommendations with the contract's environment; returns the first."""
        common_env = [
            *kube.literal_env({"PORT": str(HTTP_PORT), "VIEWED_MESSAGING": "fanout", "WEB_CONCURRENCY": "2"}),
            *kube.literal_env(tracing_env(settings.trace_sample_ratio)),
            kube.secret_env("RABBIT", rabbit_secret, "url"),
        ]
        tag = settings.image_tag or ""

        def spec(service: str, env: list[k8s.core.v1.EnvVarArgs], **extra: Any) -> MicroserviceSpec:
            return MicroserviceSpec(
                name=service,
                image=pulumi.Output.from_input(registry).apply(lambda server: f"{server}/{service}:{tag}"),
                version=tag,
                env=env,
                replicas=settings.replicas,
                disruption_budget=settings.disruption_budgets,
                **extra,
            )

        video_streaming = Microservice(
            spec(
                VIDEO_STREAMING,
                [*common_env, *kube.literal_env({"HISTORY_URL": f"http://{HISTORY}"})],
                public=True,
                max_replicas=settings.video_streaming_max_replicas,
                outbox=True,
                front=True,
            ),
            instance,
            opts=opts,
        )
        for service in (HISTORY, RECOMMENDATIONS):
            consumer_env = [
                *common_env,
                kube.secret_env("DBHOST", db_secret, "url"),
                *kube.literal_env({"DBNAME": service, "VIEWED_QUEUE": f"{service}.viewed"}),
            ]
            Microservice(spec(service, consumer_env, worker_module=f"{service}.worker"), instance, opts=opts)
        return video_streaming
