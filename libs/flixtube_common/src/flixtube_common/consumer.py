"""Consumes "viewed" messages into a store: at least once in, exactly once in effect.

One class owns the consumer's connection life cycle, one small method per AMQP step. A message is
acked only after the store has it (a duplicate viewId counts as stored); a message that is not a valid
view goes to the dead-letter queue and is acked; a store outage pauses consumption, leaving the
messages in the queue; a broker outage is retried with capped backoff.

Given `record_many`, the views delivered together (up to a prefetch's worth) are stored with one write
and acked with one ack once it succeeded; if the batch write fails for another reason than the store
being down, its views are stored one at a time, so only a view that breaks the handler is dead-lettered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import NamedTuple

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError
from pika.spec import Basic, BasicProperties

from flixtube_common import amqp, metrics, topology, tracing
from flixtube_common.backoff import Backoff
from flixtube_common.logs import event
from flixtube_common.store import StoreUnavailable
from flixtube_common.views import InvalidView, View

LOGGER = logging.getLogger(__name__)

# Many messages in flight hide the round trip per ack; small enough to requeue quickly on a pause.
PREFETCH = 100
BEAT_SECONDS = 10.0
LAG_SECONDS = 5.0  # how often the queue's depth is sampled for the lag gauge
BATCH = PREFETCH


class Delivery(NamedTuple):
    method: Basic.Deliver
    properties: BasicProperties
    body: bytes
    view: View


class ViewConsumer:
    def __init__(
        self,
        url: str,
        mode: str,
        subscriber_queue: str,
        *,
        record: Callable[[View], bool],
        record_many: Callable[[list[View]], list[bool]] | None = None,
        store_ready: Callable[[], bool],
        name: str,
        subscriber: str,
        collection: str,
        heartbeat_file: Path | None = None,
    ) -> None:
        self._url = url
        self._mode = mode
        self._subscriber_queue = subscriber_queue
        self._record = record
        self._record_many = record_many
        self._batch: list[Delivery] = []
        self._store_ready = store_ready
        self._name = name
        self._metrics = metrics.SubscriberMetrics.of(subscriber)
        self._queue = topology.consumer_queue(mode, subscriber_queue)
        self._lag = metrics.CONSUMER_LAG.labels(subscriber, self._queue)
        self._collection = collection
        self._heartbeat_file = heartbeat_file
        self._backoff = Backoff()
        self._connection: pika.BlockingConnection | None = None
        self._store_down = False

    def run(self) -> None:
        """Consume until the process is stopped, reconnecting whenever the broker goes away."""
        while True:
            try:
                channel, queue = self._connect()
                while True:
                    self._wait_for_store()
                    self._consume(channel, queue)
            except AMQPError as error:
                event(
                    LOGGER,
                    "broker connection lost, reconnecting",
                    logging.WARNING,
                    error=f"{type(error).__name__}: {error}",
                )
            finally:
                self._close()
            self._beat()
            self._sleep(self._backoff.next_delay())

    def _connect(self) -> tuple[BlockingChannel, str]:
        self._connection = pika.BlockingConnection(amqp.parameters(self._url, self._name))
        channel = self._connection.channel()
        self._batch = []  # the broker requeues whatever the last connection left unacked
        channel.confirm_delivery()  # dead-lettered copies are confirmed before the original is acked
        queue = topology.declare_for_consume(channel, self._mode, self._subscriber_queue)
        channel.basic_qos(prefetch_count=PREFETCH)
        self._backoff.reset()
        self._schedule_beat()
        self._schedule_lag(channel, queue)
        event(LOGGER, "consuming", broker=amqp.describe(self._url), queue=queue, mode=self._mode)
        return channel, queue

    def _consume(self, channel: BlockingChannel, queue: str) -> None:
        """Deliver messages to _on_message until the store goes down (then return) or the broker does."""
        self._store_down = False
        channel.basic_consume(queue, self._on_message)
        channel.start_consuming()

    def _on_message(
        self, channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties, body: bytes
    ) -> None:
        self._metrics.consumed.inc()
        try:
            view = View.from_bytes(body, properties.message_id)
        except InvalidView as error:
            self._dead_letter(channel, body, properties, str(error), "invalid")
            channel.basic_ack(method.delivery_tag)
            return
        delivery = Delivery(method, properties, body, view)
        if self._record_many is None:
            self._store_one(channel, delivery)
            return
        if not self._batch and self._connection is not None:
            # A timer runs after the deliveries that arrived with this one have been handed over.
            self._connection.call_later(0, lambda: self._flush(channel))
        self._batch.append(delivery)
        if len(self._batch) >= BATCH:
            self._flush(channel)

    def _flush(self, channel: BlockingChannel) -> None:
        """Store the waiting views with one write, then ack them with one ack."""
        batch, self._batch = self._batch, []
        if not batch or not channel.is_open:
            return  # after a closed channel, the broker requeues what was not acked
        assert self._record_many is not None
        try:
            with self._processing(batch):
                stored = self._record_many([delivery.view for delivery in batch])
        except StoreUnavailable as error:
            self._pause(error)
            channel.basic_nack(batch[-1].method.delivery_tag, multiple=True, requeue=True)
            channel.stop_consuming()
            return
        except Exception:
            LOGGER.exception("batch write failed, storing its views one at a time")
            for delivery in batch:
                self._store_one(channel, delivery)
            return
        channel.basic_ack(batch[-1].method.delivery_tag, multiple=True)
        self._metrics.recorded(stored)
        for delivery, new in zip(batch, stored, strict=True):
            self._log_stored(delivery, new)

    def _store_one(self, channel: BlockingChannel, delivery: Delivery) -> None:
        method, properties, body, view = delivery
        try:
            with self._processing([delivery]):
                stored = self._record(view)
        except StoreUnavailable as error:
            self._pause(error)
            channel.basic_nack(method.delivery_tag, requeue=True)
            channel.stop_consuming()  # also requeues what was prefetched but not yet handled
            return
        except Exception as error:  # a view that breaks the handler must not crash-loop the worker
            LOGGER.exception("handler failed")
            reason = f"handler failed: {type(error).__name__}: {error}"
            self._dead_letter(channel, body, properties, reason, "handler_failed")
            channel.basic_ack(method.delivery_tag)
            return
        channel.basic_ack(method.delivery_tag)
        self._metrics.recorded([stored])
        self._log_stored(delivery, stored)

    def _processing(self, batch: list[Delivery]) -> AbstractContextManager[None]:
        """The spans of writing these views: each message's own, in the trace its headers name."""
        messages = [(delivery.properties.headers, delivery.view.view_id) for delivery in batch]
        return tracing.processing(messages, self._queue, self._collection)

    def _pause(self, error: StoreUnavailable) -> None:
        event(LOGGER, "store unavailable, pausing consumption", logging.WARNING, error=str(error))
        self._store_down = True
        self._metrics.outages.inc()
        self._metrics.paused.set(1)

    def _log_stored(self, delivery: Delivery, stored: bool) -> None:
        event(
            LOGGER,
            "view stored" if stored else "duplicate view ignored",
            videoPath=delivery.view.video_path,
            viewId=delivery.view.view_id,
            redelivered=delivery.method.redelivered,
            **tracing.logged_trace(delivery.properties.headers),
        )

    def _dead_letter(
        self, channel: BlockingChannel, body: bytes, properties: BasicProperties, reason: str, kind: str
    ) -> None:
        """Send a copy to the dead-letter queue; `reason` says what was wrong, `kind` which kind it is."""
        headers = dict(properties.headers or {})
        headers["x-flixtube-error"] = reason
        headers["x-flixtube-consumer"] = self._name
        channel.basic_publish(
            "",
            topology.DEAD_LETTER_QUEUE,
            body,
            pika.BasicProperties(
                content_type=properties.content_type,
                delivery_mode=pika.DeliveryMode.Persistent,
                message_id=properties.message_id,
                headers=headers,
            ),
        )
        event(
            LOGGER,
            "message dead-lettered",
            logging.WARNING,
            reason=reason,
            queue=topology.DEAD_LETTER_QUEUE,
            messageId=properties.message_id,
            **tracing.logged_trace(properties.headers),
        )
        self._metrics.dead_lettered[kind].inc()

    def _wait_for_store(self) -> None:
        """While the store is down, hold off consuming; messages stay safely in the queue."""
        backoff = Backoff(first=0.5, cap=5.0)
        while self._store_down and not self._store_ready():
            self._sleep(backoff.next_delay())
        if self._store_down:
            event(LOGGER, "store back, resuming consumption")
            self._metrics.paused.set(0)

    def _sleep(self, seconds: float) -> None:
        # Sleeping through the connection keeps its heartbeats going.
        if self._connection is not None and self._connection.is_open:
            self._connection.sleep(seconds)
        else:
            time.sleep(seconds)

    def _schedule_beat(self) -> None:
        if self._heartbeat_file is not None and self._connection is not None:
            self._beat()
            self._connection.call_later(BEAT_SECONDS, self._schedule_beat)

    def _schedule_lag(self, channel: BlockingChannel, queue: str) -> None:
        """Sample the queue's depth now and every LAG_SECONDS while this connection lasts."""
        if self._connection is None or not channel.is_open:
            return
        self._lag.set(channel.queue_declare(queue, passive=True).method.message_count)
        self._connection.call_later(LAG_SECONDS, lambda: self._schedule_lag(channel, queue))

    def _beat(self) -> None:
        """Touch the liveness file: the process is alive and its loop is turning."""
        if self._heartbeat_file is not None:
            self._heartbeat_file.touch()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except AMQPError:
                LOGGER.debug("close failed", exc_info=True)
