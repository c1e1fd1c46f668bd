"""What history and recommendations share: both subscribe to "viewed" and keep views in MongoDB."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pika
from flask import Flask
from pika.exceptions import AMQPError

from flixtube_common import amqp, config, logs, metrics, store, topology, tracing, web
from flixtube_common.consumer import ViewConsumer

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubscriberSettings:
    service: str
    db_url: str
    db_name: str
    collection: str
    messaging: str
    rabbit_url: str | None
    queue: str
    consumes: bool  # whether this service consumes "viewed" in the chosen messaging mode

    @classmethod
    def from_env(
        cls, env: config.Env, *, service: str, collection: str, queue: str, consumes_in: tuple[str, ...]
    ) -> SubscriberSettings:
        mode = config.messaging_mode(env)
        consumes = mode in consumes_in
        return cls(
            service=service,
            db_url=config.mongo_url(env),
            db_name=config.optional(env, "DBNAME", service),
            collection=collection,
            messaging=mode,
            rabbit_url=config.rabbit_url(env, mode) if consumes else None,
            queue=topology.consumer_queue(mode, config.optional(env, "VIEWED_QUEUE", queue)),
            consumes=consumes,
        )

    def open_store(self) -> store.ViewStore:
        return store.ViewStore(store.client(self.db_url, self.service)[self.db_name][self.collection])


def create_subscriber_app(
    import_name: str,
    load: Callable[[config.Env], SubscriberSettings],
    env: config.Env | None,
    views: store.ViewStore | None,
) -> tuple[Flask, store.ViewStore]:
    """The base app of a subscriber service, with its store (the given one, or MongoDB) and readiness."""
    settings = load(config.environ() if env is None else env)
    logs.configure(settings.service)
    views = views or settings.open_store()
    app = web.create_base_app(import_name, settings.service)
    add_readiness_checks(app, settings, views)
    return app, views


def add_readiness_checks(app: Flask, settings: SubscriberSettings, views: store.ViewStore) -> None:
    """Ready = the database answers and, where this service consumes, its queue has a consumer."""
    web.add_readiness_check(app, "database", views.ping)
    if settings.consumes and settings.rabbit_url:
        url = settings.rabbit_url
        web.add_readiness_check(app, "consumer", lambda: queue_has_consumer(url, settings.queue))


def queue_has_consumer(url: str, queue: str, timeout: float = 0.8) -> bool:
    """Whether a worker consumes `queue`: asked of the broker, with a short deadline."""
    params = amqp.parameters(url, "readiness-check")
    params.socket_timeout = params.stack_timeout = timeout
    try:
        connection = pika.BlockingConnection(params)
    except AMQPError:
        return False
    try:
        declared = connection.channel().queue_declare(queue, passive=True)
        return declared.method.consumer_count > 0
    except AMQPError:
        return False
    finally:
        if connection.is_open:
            connection.close()


def run_worker(service: str, load: Callable[[config.Env], SubscriberSettings]) -> int:
    """The `worker:` process: consume "viewed" into the store until stopped (exit 0 if nothing to consume)."""
    logs.configure(service)
    env = config.environ()
    try:
        settings = load(env)
        tracing.configure(service, env)
        if not settings.consumes or settings.rabbit_url is None:
            logs.event(LOGGER, "nothing to consume in this messaging mode", mode=settings.messaging)
            return 0
        metrics_port = metrics.serve(env)
    except (config.ConfigError, OSError) as error:  # OSError: METRICS_PORT is taken
        print(f"Error: {error}", file=sys.stderr)
        return 2
    logs.event(LOGGER, "metrics", url=f"http://0.0.0.0:{metrics_port}/metrics" if metrics_port else None)
    views = settings.open_store()
    heartbeat = env.get("HEARTBEAT_FILE")
    consumer = ViewConsumer(
        settings.rabbit_url,
        settings.messaging,
        settings.queue,
        record=views.record,
        record_many=views.record_many,
        store_ready=views.ping,
        name=f"{service}-worker",
        subscriber=service,
        collection=settings.collection,
        heartbeat_file=Path(heartbeat) if heartbeat else None,
    )
    try:
        consumer.run()
    except KeyboardInterrupt:
        logs.event(LOGGER, "stopped")
    finally:
        tracing.flush()
    return 0
