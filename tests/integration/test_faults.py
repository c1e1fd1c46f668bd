"""Faults that must delay views but never lose or double them: a killed consumer, a broker crash,
a database restart. Every wait polls with a deadline."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import requests

from flixtube_common import broker_definitions
from tests.conftest import StartFlixTube
from tests.harness import FlixTube, MongoServer, publish, queue_depth, view_body, wait_until
from tests.rabbit_node import RabbitNode

pytestmark = pytest.mark.slow


def stored(app: FlixTube, service: str, collection: str) -> int:
    return app.database(service)[collection].count_documents({})


def ready_status(app: FlixTube, service: str) -> tuple[int, float]:
    """/readyz's status and how long it took to answer."""
    started = time.monotonic()
    status = requests.get(app.url(service, "/readyz"), timeout=10).status_code
    return status, time.monotonic() - started


def play_from_start(app: FlixTube, name: str = "big.mp4") -> int:
    response = requests.get(
        app.url("video-streaming", "/video"),
        params={"path": name},
        headers={"Range": "bytes=0-4095"},
        timeout=10,
    )
    return response.status_code


@pytest.mark.parametrize(
    ("service", "mode", "collection", "queue"),
    [
        ("history", "queue", "videos", "viewed"),
        ("recommendations", "fanout", "views", "recommendations.viewed"),
    ],
)
def test_sigkill_of_the_consumer_mid_queue_loses_and_doubles_nothing(
    start_flixtube: StartFlixTube, service: str, mode: str, collection: str, queue: str
) -> None:
    total = 2000
    app = start_flixtube(mode, services=(service,))
    worker = app.processes[f"{service}.worker"]
    worker.stop()
    exchange, key = ("", "viewed") if mode == "queue" else ("viewed", "")
    publish(
        app.rabbit_url, [view_body(f"v{i % 7}.mp4", viewId=f"id-{i}") for i in range(total)], exchange, key
    )
    assert queue_depth(app.rabbit_url, queue) == total

    worker.start()
    wait_until(lambda: stored(app, service, collection) >= 100, what="the worker to get going")
    worker.stop(signal.SIGKILL)
    assert stored(app, service, collection) < total, "the worker finished before it could be killed mid-queue"

    worker.start()
    wait_until(lambda: stored(app, service, collection) == total, timeout=120, what=f"{total} views")
    wait_until(lambda: queue_depth(app.rabbit_url, queue) == 0, what="an empty queue")
    ids = app.database(service)[collection].distinct("viewId")
    assert sorted(ids) == sorted(f"id-{i}" for i in range(total))
    assert stored(app, service, collection) == total
    if service == "recommendations":
        assert sum(app.view_counts().values()) == total


def test_a_broker_crash_during_playback_keeps_every_stream_and_every_view(
    tmp_path: Path, mongo_url: str, videos_dir: Path
) -> None:
    """kill -9 of the broker (a node of the test's own: the shared one serves everyone else)."""
    broker_definitions.write(tmp_path / "definitions", "guest", "guest")
    node = RabbitNode(tmp_path / "rabbit", tmp_path / "definitions")
    node.start()
    app = FlixTube("fanout", tmp_path, mongo_url, node.url, videos_dir)
    try:
        app.start()
        broker_crash(app, node)
    finally:
        app.stop()
        node.stop()


def broker_crash(app: FlixTube, node: RabbitNode) -> None:
    statuses = [play_from_start(app) for _ in range(10)]

    node.kill()
    try:
        wait_until(lambda: ready_status(app, "video-streaming")[0] == 503, what="video-streaming not ready")
        statuses += [play_from_start(app) for _ in range(10)]  # views wait in the outbox
        for service in ("video-streaming", "history", "recommendations"):
            status, seconds = ready_status(app, service)
            assert status == 503, service
            assert seconds < 2, f"{service} /readyz took {seconds:.1f} s with the broker down"
    finally:
        node.start()
    wait_until(lambda: ready_status(app, "video-streaming")[0] == 200, timeout=60, what="publisher reconnect")
    statuses += [play_from_start(app) for _ in range(10)]
    assert statuses == [206] * 30

    play_from_start(app, "a-sample.mp4")  # a marker: once it is stored, everything before it is
    wait_until(
        lambda: app.view_counts().get("a-sample.mp4") == 1, timeout=60, what="marker in recommendations"
    )
    wait_until(lambda: stored(app, "history", "videos") == 31, timeout=60, what="31 views in history")
    assert app.view_counts() == {"big.mp4": 30, "a-sample.mp4": 1}
    assert len(app.database("history")["videos"].distinct("viewId")) == 31


def test_a_database_restart_while_views_arrive_stores_each_once(
    start_flixtube: StartFlixTube, mongo_server: MongoServer
) -> None:
    app = start_flixtube("fanout", services=("history", "recommendations"), db_url=mongo_server.url)
    first = [view_body("before.mp4", viewId=f"b-{i}") for i in range(100)]
    publish(app.rabbit_url, first, "viewed", "")
    wait_until(lambda: stored(app, "history", "videos") == 100, what="the first views")

    mongo_server.kill()
    later = [view_body("during.mp4", viewId=f"d-{i}") for i in range(300)]
    publish(app.rabbit_url, later, "viewed", "")
    status, seconds = ready_status(app, "history")
    assert (status, seconds < 2) == (503, True)
    started = time.monotonic()
    response = requests.post(app.url("history", "/viewed"), json={"videoPath": "x.mp4"}, timeout=15)
    assert response.status_code == 503
    assert time.monotonic() - started < 10
    # Consumption pauses: the views wait in the queues instead of being dropped or dead-lettered.
    wait_until(
        lambda: queue_depth(app.rabbit_url, "history.viewed") >= 250, what="views waiting in the queue"
    )

    mongo_server.start()
    for service, collection in (("history", "videos"), ("recommendations", "views")):
        wait_until(
            lambda s=service, c=collection: stored(app, s, c) == 400, timeout=90, what=f"400 in {service}"
        )
    assert app.view_counts() == {"during.mp4": 300, "before.mp4": 100}
    assert queue_depth(app.rabbit_url, "viewed.dead") == 0
