"""The batch paths the benchmarks asked for: one insert for many views, one wait for many confirms."""

from __future__ import annotations

import uuid

import pika

from flixtube_common.publisher import AmqpPublisher
from flixtube_common.store import ViewStore
from flixtube_common.views import View
from tests.harness import MongoServer


def test_record_many_reports_each_duplicate_and_stores_the_rest(mongo_server: MongoServer) -> None:
    with mongo_server.client() as client:
        store = ViewStore(client["batches"]["videos"])
        first, second, third = View("a.mp4"), View("b.mp4"), View("c.mp4")
        assert store.record(second)
        assert store.record_many([first, second, third, first]) == [True, False, True, False]
        stored = sorted(doc["viewId"] for doc in store.collection.find({}, {"_id": 0, "viewId": 1}))
        assert stored == sorted([first.view_id, second.view_id, third.view_id])


def test_send_many_returns_once_the_broker_has_every_message(rabbit_url: str) -> None:
    queue = f"batch-{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    channel = connection.channel()
    channel.exchange_declare("viewed", exchange_type="fanout", durable=True)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, "viewed")
    publisher = AmqpPublisher(rabbit_url, "fanout", "test-batches")
    publisher.connect()
    views = [View(f"{n}.mp4") for n in range(250)]
    try:
        publisher.send_many(views[:200])
        publisher.send(views[200])
        publisher.send_many(views[201:])
        assert channel.queue_declare(queue, passive=True).method.message_count == len(views)
        ids = []
        for _ in views:
            method, properties, _body = channel.basic_get(queue, auto_ack=True)
            assert method is not None
            ids.append(properties.message_id)
        assert ids == [view.view_id for view in views]  # in order, each once
    finally:
        publisher.close()
        channel.queue_delete(queue)
        connection.close()
