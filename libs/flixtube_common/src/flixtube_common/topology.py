"""The RabbitMQ names of the contract and how each side declares them.

`viewed` (queue) and `viewed` (exchange) are declared plain (durable, no arguments) so any other
implementation of the design can declare them too; dead-lettering is done by our consumer.
"""

from __future__ import annotations

from typing import Any

from pika.adapters.blocking_connection import BlockingChannel
from pika.channel import Channel

VIEWED = "viewed"
DEAD_LETTER_QUEUE = "viewed.dead"


def publish_target(mode: str) -> tuple[str, str]:
    """(exchange, routing key) a publisher sends "viewed" to in `mode`."""
    return ("", VIEWED) if mode == "queue" else (VIEWED, "")


def declare_for_publish(channel: BlockingChannel | Channel, mode: str, **callback: Any) -> None:
    """Declare what a publisher sends to; on pika's asynchronous Channel, pass `callback=`."""
    if mode == "queue":
        channel.queue_declare(VIEWED, durable=True, **callback)
    else:
        channel.exchange_declare(VIEWED, exchange_type="fanout", durable=True, **callback)


def consumer_queue(mode: str, subscriber_queue: str) -> str:
    """The queue a consumer reads: the shared `viewed` queue, or its own queue bound to the exchange."""
    return VIEWED if mode == "queue" else subscriber_queue


def declare_for_consume(channel: BlockingChannel, mode: str, subscriber_queue: str) -> str:
    channel.queue_declare(DEAD_LETTER_QUEUE, durable=True)
    declare_for_publish(channel, mode)
    queue = consumer_queue(mode, subscriber_queue)
    if mode == "fanout":
        channel.queue_declare(queue, durable=True)
        channel.queue_bind(queue, VIEWED)
    return queue
