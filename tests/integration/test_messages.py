"""What consumers do with the messages any publisher of the design may send."""

from __future__ import annotations

import json

import pytest

from tests.conftest import StartFlixTube
from tests.harness import FlixTube, get_all, publish, queue_depth, view_body, wait_until

SUBSCRIBERS = ("history", "recommendations")


def settled(app: FlixTube, marker: str) -> None:
    """Publish a marker last and wait until both subscribers stored it: all before it is handled."""
    publish(app.rabbit_url, [view_body(marker)], "viewed", "")
    wait_until(lambda: any(v["videoPath"] == marker for v in app.history()), what="marker in history")
    wait_until(lambda: app.view_counts().get(marker) == 1, what="marker in recommendations")


def test_poison_messages_go_to_the_dead_letter_queue_once(start_flixtube: StartFlixTube) -> None:
    app = start_flixtube("fanout", services=SUBSCRIBERS)
    poison = [
        b"\xff not json",
        b"[1, 2]",
        b'{"videoPath": ""}',
        b'{"path": "x.mp4"}',
        b'{"videoPath": "x", "viewedAt": "soon"}',
    ]
    publish(app.rabbit_url, poison, "viewed", "")
    settled(app, "after-poison.mp4")

    dead = get_all(app.rabbit_url, "viewed.dead")
    # Each subscriber dead-letters its own copy of each broadcast message, exactly once.
    assert sorted(body for _, body in dead) == sorted(poison * 2)
    assert all(props.headers["x-flixtube-error"] for props, _ in dead)
    assert queue_depth(app.rabbit_url, "history.viewed") == 0
    assert queue_depth(app.rabbit_url, "recommendations.viewed") == 0
    assert [v["videoPath"] for v in app.history()] == ["after-poison.mp4"]


def test_a_bare_message_takes_its_view_id_from_the_message_id(start_flixtube: StartFlixTube) -> None:
    app = start_flixtube("fanout", services=SUBSCRIBERS)
    publish(app.rabbit_url, [view_body("bare.mp4")], "viewed", "", message_ids=["amqp-id-1"])
    settled(app, "marker.mp4")
    [stored] = app.database("history")["videos"].find({"videoPath": "bare.mp4"})
    assert stored["viewId"] == "amqp-id-1"
    assert stored["viewedAt"].tzinfo is not None


def test_a_duplicated_message_id_stores_one_view(start_flixtube: StartFlixTube) -> None:
    app = start_flixtube("fanout", services=SUBSCRIBERS)
    body = view_body("twice.mp4")
    publish(app.rabbit_url, [body, body, body], "viewed", "", message_ids=["same", "same", "same"])
    settled(app, "marker.mp4")
    assert sum(v["videoPath"] == "twice.mp4" for v in app.history()) == 1
    assert app.view_counts()["twice.mp4"] == 1


@pytest.mark.parametrize("mode", ["queue", "fanout"])
def test_view_fields_from_the_publisher_are_honoured(start_flixtube: StartFlixTube, mode: str) -> None:
    app = start_flixtube(mode, services=SUBSCRIBERS)
    exchange, key = ("", "viewed") if mode == "queue" else ("viewed", "")
    body = json.dumps({"videoPath": "dated.mp4", "viewId": "v-1", "viewedAt": "2025-05-05T05:05:05.5+02:00"})
    publish(app.rabbit_url, [body.encode()], exchange, key)
    wait_until(app.history, what="the view")
    assert app.history() == [{"videoPath": "dated.mp4", "viewedAt": "2025-05-05T03:05:05.500Z"}]
