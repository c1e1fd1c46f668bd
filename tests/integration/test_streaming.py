"""video-streaming over real HTTP (gunicorn from the Procfile): ranges, conditional requests, safety,
and exactly one "viewed" message per playback start, read from a queue bound to the real exchange."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
import requests

from tests.conftest import make_videos
from tests.harness import FlixTube, get_all, rabbit_vhost, wait_until

PROBE = "test.probe"


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory, mongo_url: str) -> Iterator[FlixTube]:
    tmp = tmp_path_factory.mktemp("stream")
    with rabbit_vhost() as rabbit:
        connection = pika.BlockingConnection(pika.URLParameters(rabbit))
        channel = connection.channel()
        channel.exchange_declare("viewed", "fanout", durable=True)
        channel.queue_declare(PROBE, durable=True)
        channel.queue_bind(PROBE, "viewed")
        connection.close()
        app = FlixTube("fanout", tmp, mongo_url, rabbit, make_videos(tmp))
        app.start(("video-streaming",))
        yield app
        app.stop()


@pytest.fixture
def viewed(stream: FlixTube) -> Iterator[list[dict[str, Any]]]:
    """The "viewed" messages published during the test (filled in by `settle`)."""
    get_all(stream.rabbit_url, PROBE)
    yield []


def settle(stream: FlixTube, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Wait until the outbox is empty, then collect what reached the probe queue."""
    wait_until(lambda: stream.get_json("video-streaming", "/stats")["views"]["buffered"] == 0, what="outbox")
    import json

    messages.extend({"properties": p, **json.loads(body)} for p, body in get_all(stream.rabbit_url, PROBE))
    return messages


def video(
    stream: FlixTube, name: str | None = "big.mp4", method: str = "GET", **headers: str
) -> requests.Response:
    params = {"path": name} if name is not None else {}
    return requests.request(
        method, stream.url("video-streaming", "/video"), params=params, headers=headers, timeout=10
    )


def file_bytes(stream: FlixTube, name: str = "big.mp4") -> bytes:
    return Path(stream.videos_dir, name).read_bytes()


def test_full_get_streams_the_file_and_announces_one_view(stream: FlixTube, viewed: list) -> None:
    response = video(stream)
    assert response.status_code == 200
    assert response.content == file_bytes(stream)
    assert response.headers["Content-Type"] == "video/mp4"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert int(response.headers["Content-Length"]) == len(response.content)
    [message] = settle(stream, viewed)
    assert message["videoPath"] == "big.mp4"
    assert message["properties"].message_id == message["viewId"]
    assert message["properties"].delivery_mode == 2
    assert message["properties"].content_type == "application/json"
    assert message["viewedAt"].endswith("Z")


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=1000-", 1000, None), ("bytes=-500", None, None), ("bytes=5-5", 5, 5)],
)
def test_ranges_answer_206_with_exact_bytes(
    stream: FlixTube, header: str, start: int | None, end: int | None
) -> None:
    data = file_bytes(stream)
    response = video(stream, Range=header)
    assert response.status_code == 206
    expected = data[-500:] if start is None else data[start : (end + 1 if end is not None else None)]
    assert response.content == expected
    first = len(data) - 500 if start is None else start
    assert response.headers["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
    assert response.headers["Accept-Ranges"] == "bytes"


def test_random_megabyte_ranges_match_the_file(stream: FlixTube) -> None:
    data = file_bytes(stream)
    rng = random.Random(7)
    for _ in range(10):
        start = rng.randrange(0, len(data) - 1)
        end = min(len(data) - 1, start + 1024 * 1024 - 1)
        assert video(stream, Range=f"bytes={start}-{end}").content == data[start : end + 1]


def test_only_playback_starts_announce_views(stream: FlixTube, viewed: list) -> None:
    size = len(file_bytes(stream))
    assert video(stream, Range="bytes=0-1023").status_code == 206  # a start: one view
    assert video(stream, Range="bytes=1024-").status_code == 206  # the same playback goes on: none
    assert video(stream, method="HEAD").status_code == 200
    assert video(stream, Range=f"bytes={size}-").status_code == 416
    assert video(stream, "missing.mp4").status_code == 404
    etag = video(stream, method="HEAD").headers["ETag"]
    assert video(stream, **{"If-None-Match": etag}).status_code == 304
    assert [m["videoPath"] for m in settle(stream, viewed)] == ["big.mp4"]


def test_head_has_headers_and_no_body(stream: FlixTube) -> None:
    response = video(stream, method="HEAD")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Accept-Ranges"] == "bytes"
    assert int(response.headers["Content-Length"]) == len(file_bytes(stream))


def test_unsatisfiable_range_is_416_with_the_size(stream: FlixTube) -> None:
    size = len(file_bytes(stream))
    response = video(stream, Range=f"bytes={size + 10}-{size + 20}")
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{size}"


def test_conditional_requests_answer_304(stream: FlixTube) -> None:
    first = video(stream, method="HEAD")
    assert video(stream, **{"If-None-Match": first.headers["ETag"]}).status_code == 304
    assert video(stream, **{"If-Modified-Since": first.headers["Last-Modified"]}).status_code == 304
    assert video(stream, **{"If-None-Match": '"other"'}).status_code == 200


def test_validators_win_over_range(stream: FlixTube, viewed: list) -> None:
    """RFC 9110: a current copy is 304 even for a ranged request, and so it is no playback start."""
    first = video(stream, method="HEAD")
    for validator in (
        {"If-None-Match": first.headers["ETag"]},
        {"If-Modified-Since": first.headers["Last-Modified"]},
    ):
        response = video(stream, Range="bytes=0-99", **validator)
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["ETag"] == first.headers["ETag"]
    assert video(stream, Range="bytes=0-99", **{"If-None-Match": '"other"'}).status_code == 206
    assert [m["videoPath"] for m in settle(stream, viewed)] == ["big.mp4"]


@pytest.mark.parametrize(
    "name", ["../secret.txt", "/etc/passwd", "more/../../secret.txt", "escape.mp4", "..", "more\\..\\x"]
)
def test_names_that_leave_the_folder_are_refused(stream: FlixTube, name: str, viewed: list) -> None:
    response = video(stream, name)
    assert response.status_code in (400, 404)
    assert b"not a video" not in response.content
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]
    assert settle(stream, viewed) == []


def test_unknown_video_is_404(stream: FlixTube) -> None:
    response = video(stream, "nope.mp4")
    assert response.status_code == 404
    assert "nope.mp4" in response.json()["error"]


def test_path_omitted_serves_the_first_video_by_name(stream: FlixTube) -> None:
    response = video(stream, None, Range="bytes=0-9")
    assert response.status_code == 206
    assert response.content == file_bytes(stream, "a-sample.mp4")[:10]


def test_videos_lists_every_video_inside_the_folder(stream: FlixTube) -> None:
    listed = stream.get_json("video-streaming", "/videos")["videos"]
    assert listed == [
        {"path": "a-sample.mp4", "size": len(file_bytes(stream, "a-sample.mp4"))},
        {"path": "big.mp4", "size": len(file_bytes(stream))},
        {"path": "more/clip.webm", "size": 4096},
    ]


def test_content_type_follows_the_extension(stream: FlixTube) -> None:
    assert video(stream, "more/clip.webm", method="HEAD").headers["Content-Type"] == "video/webm"


def test_health_and_readiness(stream: FlixTube) -> None:
    assert requests.get(stream.url("video-streaming", "/healthz"), timeout=2).status_code == 200
    ready = requests.get(stream.url("video-streaming", "/readyz"), timeout=2)
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"broker": True}
