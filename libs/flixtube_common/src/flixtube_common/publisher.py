"""Publishes "viewed" messages to RabbitMQ with publisher confirms; used by the outbox thread only.

The outbox thread owns one pika `SelectConnection` and its I/O loop, through pika's asynchronous API:
each step (open the connection, open a channel, turn on confirms, declare, publish) is started, then the
loop runs until that step's callback says it is done, or something failed, or the step's deadline
passed. A batch of views is published at once and then its confirms are awaited together, tracked by
delivery tag (Basic.Ack and Basic.Nack, either of which may cover every tag up to its own with
`multiple`): the broker confirms (and, for persistent messages, writes) many messages for the price of
one round trip. Between batches, `poll` turns the loop once so heartbeats keep flowing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pika
from pika.channel import Channel
from pika.exceptions import AMQPConnectionError, AMQPError
from pika.frame import Method
from pika.spec import Basic

from flixtube_common import amqp, topology
from flixtube_common.logs import event
from flixtube_common.views import View

LOGGER = logging.getLogger(__name__)

CONFIRM_TIMEOUT = 30.0  # seconds to wait for a batch's confirms before the outbox retries it
CONNECT_TIMEOUT = 15.0  # seconds for the connection, channel, confirm mode and declaration together
CLOSE_TIMEOUT = 2.0


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
        self._connection: pika.SelectConnection | None = None
        self._channel: Channel | None = None
        self._confirms = Confirms()
        self._declared = False
        self._failure: str | None = None

    @property
    def connected(self) -> bool:
        return (
            self._connection is not None
            and self._connection.is_open
            and self._channel is not None
            and self._channel.is_open
            and self._declared
        )

    def connect(self) -> None:
        """Open the connection and a channel in confirm mode and declare the target (or raise)."""
        self.close()
        self._failure = None
        self._declared = False
        self._confirms = Confirms()
        self._connection = pika.SelectConnection(
            amqp.parameters(self._url, self._name),
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_connection_open_error,
            on_close_callback=self._on_connection_closed,
        )
        self._run_until(lambda: self._declared, "connection, confirm mode and declaration", CONNECT_TIMEOUT)
        event(LOGGER, "broker connected", broker=amqp.describe(self._url), mode=self._mode)

    def send(self, view: View) -> None:
        """Publish one view and wait for the broker's confirm (raises if it is nacked or lost)."""
        self.send_many([view])

    def send_many(self, views: list[View]) -> None:
        """Publish the views, then wait until the broker confirmed them all (raises if any is nacked)."""
        assert self._channel is not None, "connect() first"
        now = int(time.time())
        for view in views:
            properties = pika.BasicProperties(
                content_type="application/json",
                delivery_mode=pika.DeliveryMode.Persistent,
                message_id=view.view_id,
                timestamp=now,
                headers=view.trace or None,  # W3C traceparent: the consumer's span continues the trace
            )
            self._channel.basic_publish(self._exchange, self._routing_key, view.to_bytes(), properties)
            self._confirms.published()
        # The frames wait in the connection's buffer; the loop writes them all, then reads the confirms.
        self._run_until(lambda: not self._confirms.outstanding, f"confirms of {len(views)} messages")
        if self._confirms.nacked:
            self._confirms.nacked = False
            raise ConfirmFailed("the broker nacked a message of the batch")

    def poll(self) -> None:
        """Turn the loop once: answer heartbeats, notice a closed connection."""
        if self._connection is not None and not self._connection.is_closed:
            loop = self._connection.ioloop
            loop.call_later(0, loop.stop)
            loop.start()

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is None:
            return
        if connection.is_open:
            try:
                connection.close()
                self._turn(connection, lambda: connection.is_closed, CLOSE_TIMEOUT)
            except AMQPError:
                LOGGER.debug("close failed", exc_info=True)
        connection.ioloop.close()

    # --- one callback per step of the connection's life ------------------------------------------

    def _on_connection_open(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_connection_open_error(self, _connection: pika.SelectConnection, error: BaseException) -> None:
        self._fail(f"cannot connect: {type(error).__name__}: {error}")

    def _on_connection_closed(self, connection: pika.SelectConnection, reason: BaseException) -> None:
        self._failure = self._failure or f"connection closed: {type(reason).__name__}: {reason}"
        connection.ioloop.stop()  # also while close() waits, when this is no longer self._connection

    def _on_channel_open(self, channel: Channel) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirm_mode)

    def _on_channel_closed(self, _channel: Channel, reason: BaseException) -> None:
        self._fail(f"channel closed: {type(reason).__name__}: {reason}")

    def _on_confirm_mode(self, _frame: Method) -> None:
        assert self._channel is not None
        topology.declare_for_publish(self._channel, self._mode, callback=self._on_declared)

    def _on_declared(self, _frame: Method) -> None:
        self._declared = True
        self._step_done()

    def _on_confirm(self, frame: Method) -> None:
        self._confirms.on_confirm(frame)
        if not self._confirms.outstanding or self._confirms.nacked:
            self._step_done()

    # --- running the loop until a step is done ---------------------------------------------------

    def _fail(self, reason: str) -> None:
        self._failure = self._failure or reason
        self._step_done()

    def _step_done(self) -> None:
        """Make the loop return to the step that waits (it checks whether it is done)."""
        if self._connection is not None:
            self._connection.ioloop.stop()

    def _run_until(self, done: Callable[[], bool], what: str, timeout: float = CONFIRM_TIMEOUT) -> None:
        assert self._connection is not None, "connect() first"
        if not self._turn(self._connection, lambda: done() or self._failure is not None, timeout):
            raise ConfirmFailed(f"no {what} from the broker within {timeout:g} s")
        if self._failure is not None:
            raise AMQPConnectionError(self._failure)

    @staticmethod
    def _turn(connection: pika.SelectConnection, done: Callable[[], bool], timeout: float) -> bool:
        """Run the connection's loop until `done()`, for at most `timeout` seconds; whether it is done."""
        loop = connection.ioloop
        deadline = time.monotonic() + timeout
        timer = loop.call_later(timeout, loop.stop)
        try:
            while not done():
                if time.monotonic() >= deadline:
                    return False
                loop.start()  # returns when a callback (or the deadline's timer) stops it
        finally:
            loop.remove_timeout(timer)
        return True
