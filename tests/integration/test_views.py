"""Playback starts become views, exactly once, in each of the three messaging modes."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import StartFlixTube
from tests.harness import FlixTube, wait_until

PLAYBACKS = 20


def play(app: FlixTube, name: str) -> None:
    """One playback as a player does it: a range from byte 0, then follow-up ranges."""
    url = app.url("video-streaming", "/video")
    for header in ("bytes=0-65535", "bytes=65536-131071", "bytes=131072-"):
        response = requests.get(url, params={"path": name}, headers={"Range": header}, timeout=10)
        assert response.status_code == 206


def views_of(app: FlixTube, name: str) -> int:
    return sum(1 for view in app.history() if view["videoPath"] == name)


def settle_with_barrier(app: FlixTube) -> None:
    """Play a marker video last; once history has it, every earlier view has been handled."""
    play(app, "a-sample.mp4")
    wait_until(lambda: views_of(app, "a-sample.mp4") >= 1, timeout=60, what="the marker view")


@pytest.mark.parametrize("mode", ["http", "queue", "fanout"])
def test_every_playback_is_one_view(start_flixtube: StartFlixTube, mode: str) -> None:
    app = start_flixtube(mode)
    for _ in range(PLAYBACKS):
        play(app, "big.mp4")
    wait_until(lambda: views_of(app, "big.mp4") >= PLAYBACKS, timeout=60, what="20 views in history")
    settle_with_barrier(app)

    history = app.history()
    assert views_of(app, "big.mp4") == PLAYBACKS
    assert views_of(app, "a-sample.mp4") == 1
    times = [view["viewedAt"] for view in history]
    assert times == sorted(times, reverse=True)  # newest first
    stored = list(app.database("history")["videos"].find({}, {"_id": 0}))
    assert len({doc["viewId"] for doc in stored}) == len(stored) == PLAYBACKS + 1

    if mode == "fanout":
        wait_until(lambda: app.view_counts().get("a-sample.mp4") == 1, timeout=60, what="recommendations")
        assert app.view_counts() == {"big.mp4": PLAYBACKS, "a-sample.mp4": 1}
        ranked = app.get_json("recommendations", "/recommendations?limit=1")["recommendations"]
        assert ranked == [{"videoPath": "big.mp4", "views": PLAYBACKS}]
    else:
        # Only a broadcast reaches the second subscriber; its worker has nothing to do and exits 0.
        assert app.view_counts() == {}
        worker = app.processes["recommendations.worker"].popen
        assert worker is not None
        assert worker.wait(timeout=30) == 0


def test_history_pages_newest_first_and_validates_its_parameters(start_flixtube: StartFlixTube) -> None:
    app = start_flixtube("http", services=("history",))
    for index in range(5):
        body = {"videoPath": f"v{index}.mp4", "viewedAt": f"2026-01-0{index + 1}T10:00:00Z"}
        assert requests.post(app.url("history", "/viewed"), json=body, timeout=10).status_code == 200
    page = app.get_json("history", "/history?skip=1&limit=2")["history"]
    assert page == [
        {"videoPath": "v3.mp4", "viewedAt": "2026-01-04T10:00:00.000Z"},
        {"videoPath": "v2.mp4", "viewedAt": "2026-01-03T10:00:00.000Z"},
    ]
    assert len(app.get_json("history", "/history")["history"]) == 5
    for query in ("skip=-1", "limit=abc", "limit=1.5", "skip="):
        response = requests.get(app.url("history", f"/history?{query}"), timeout=10)
        assert response.status_code == 400, query
        assert response.json()["error"]


def test_posting_a_view_twice_with_one_view_id_stores_it_once(start_flixtube: StartFlixTube) -> None:
    app = start_flixtube("http", services=("history",))
    body = {"videoPath": "retried.mp4", "viewId": "retry-1"}
    for _ in range(3):
        assert requests.post(app.url("history", "/viewed"), json=body, timeout=10).status_code == 200
    assert views_of(app, "retried.mp4") == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"videoPath": ""}',
        b'{"videoPath": 7}',
        b'{"videoPath": "x", "viewedAt": 3}',
    ],
)
def test_bad_view_posts_are_400_with_a_reason(start_flixtube: StartFlixTube, body: bytes) -> None:
    app = start_flixtube("http", services=("history",))
    response = requests.post(
        app.url("history", "/viewed"), data=body, timeout=10, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]
    assert app.history() == []
