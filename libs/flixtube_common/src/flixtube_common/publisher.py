"""Publishes "viewed" messages to RabbitMQ with publisher confirms; used by the outbox thread only."""

from __future__ import annotations

import logging
import time

import pika
from pika.adapters.blocking_connection import BlockingChannel

from flixtube_common import amqp, topology
from flixtube_common.logs import event
from flixtube_common.views import View

LOGGER = logging.getLogger(__name__)


class AmqpPublisher:
    def __init__(self, url: str, mode: str, name: str) -> None:
        self._url = url
        self._mode = mode
        self._name = name
        self._exchange, self._routing_key = topology.publish_target(mode)
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.is_open

    def connect(self) -> None:
        self._connection = pika.BlockingConnection(amqp.parameters(self._url, self._name))
        self._channel = self._connection.channel()
        self._channel.confirm_delivery()
        topology.declare_for_publish(self._channel, self._mode)
        event(LOGGER, "broker connected", broker=amqp.describe(self._url), mode=self._mode)

    def send(self, view: View) -> None:
        """Publish one view and wait for the broker's confirm (raises if it is nacked or lost)."""
        assert self._channel is not None, "connect() first"
        properties = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=view.view_id,
            timestamp=int(time.time()),
        )
        self._channel.basic_publish(self._exchange, self._routing_key, view.to_bytes(), properties)

    def poll(self) -> None:
        if self._connection is not None:
            self._connection.process_data_events(0)

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:
                LOGGER.debug("close failed", exc_info=True)
