"""Publishes "viewed" messages to RabbitMQ with publisher confirms; used by the outbox thread only.

A batch of views is published at once and then its confirms are awaited together: the broker confirms
(and, for persistent messages, writes) many messages for the price of one round trip. pika's
BlockingChannel can only wait for each message's confirm in turn, so confirm mode is turned on on the
channel it wraps, and the confirms are tracked here by delivery tag.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError
from pika.frame import Method
from pika.spec import Basic

from flixtube_common import amqp, topology
from flixtube_common.logs import event
from flixtube_common.views import View

LOGGER = logging.getLogger(__name__)

CONFIRM_TIMEOUT = 30.0  # seconds to wait for a batch's confirms before the outbox retries it


class ConfirmFailed(AMQPError):
    """The broker nacked a message, or did not confirm it in time: the batch must be sent again."""


class Confirms:
    """Delivery tags published on a channel in confirm mode and not yet acked or nacked."""

    def __init__(self) -> None:
        self.next_tag = 1
        self.outstanding: set[int] = set()
        self.nacked = False

    def published(self) -> None:
        self.outstanding.add(self.next_tag)
        self.next_tag += 1

    def on_confirm(self, frame: Method) -> None:
        method = frame.method
        tags = (
            {t for t in self.outstanding if t <= method.delivery_tag}
            if method.multiple
            else {method.delivery_tag}
        )
        self.outstanding -= tags
        if isinstance(method, Basic.Nack) and tags:
            self.nacked = True


class AmqpPublisher:
    def __init__(self, url: str, mode: str, name: str) -> None:
        self._url = url
        self._mode = mode
        self._name = name
        self._exchange, self._routing_key = topology.publish_target(mode)
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._confirms = Confirms()
        self._selected = False

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.is_open

    def connect(self) -> None:
        self._connection = pika.BlockingConnection(amqp.parameters(self._url, self._name))
        self._channel = self._connection.channel()
        self._confirms = Confirms()
        self._selected = False
        # pika 1.4's BlockingChannel waits for each message's confirm in turn and flushes each message on
        # its own: the channel it wraps is used directly to publish a batch and track its confirms.
        self._channel._impl.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_select_ok)
        self._wait(lambda: self._selected, "confirm mode")
        topology.declare_for_publish(self._channel, self._mode)
        event(LOGGER, "broker connected", broker=amqp.describe(self._url), mode=self._mode)

    def send(self, view: View) -> None:
        """Publish one view and wait for the broker's confirm (raises if it is nacked or lost)."""
        self.send_many([view])

    def send_many(self, views: list[View]) -> None:
        """Publish the views, then wait until the broker confirmed them all (raises if any is nacked)."""
        assert self._channel is not None, "connect() first"
        now = int(time.time())
        channel = self._channel._impl  # buffers the frames; _wait sends them all, then reads the confirms
        for view in views:
            properties = pika.BasicProperties(
                content_type="application/json",
                delivery_mode=pika.DeliveryMode.Persistent,
                message_id=view.view_id,
                timestamp=now,
                headers=view.trace or None,  # W3C traceparent: the consumer's span continues the trace
            )
            self._confirms.published()
            channel.basic_publish(self._exchange, self._routing_key, view.to_bytes(), properties)
        self._wait(lambda: not self._confirms.outstanding, f"confirms of {len(views)} messages")
        if self._confirms.nacked:
            self._confirms.nacked = False
            raise ConfirmFailed("the broker nacked a message of the batch")

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

    def _on_select_ok(self, _frame: Method) -> None:
        self._selected = True
        self._end_wait()

    def _on_confirm(self, frame: Method) -> None:
        self._confirms.on_confirm(frame)
        if not self._confirms.outstanding or self._confirms.nacked:
            self._end_wait()

    def _end_wait(self) -> None:
        """Make process_data_events return now: it ends early only for the connection's own events."""
        if self._connection is not None:
            self._connection.call_later(0, lambda: None)

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        assert self._connection is not None, "connect() first"
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConfirmFailed(f"no {what} from the broker within {CONFIRM_TIMEOUT:g} s")
            self._connection.process_data_events(time_limit=min(left, 1.0))
