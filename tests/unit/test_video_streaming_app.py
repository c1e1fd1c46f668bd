"""video-streaming's request handling with Flask's test client and an outbox that is never started."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from flixtube_common.outbox import Outbox
from tests.fakes import ScriptedTransport
from video_streaming import create_app


@pytest.fixture
def outbox() -> Outbox:
    return Outbox(ScriptedTransport())


@pytest.fixture
def client(tmp_path: Path, outbox: Outbox) -> FlaskClient:
    (tmp_path / "b.mp4").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "a.mp4").write_bytes(b"a" * 10)
    app = create_app({"VIDEOS_DIR": str(tmp_path), "VIEWED_MESSAGING": "http"}, outbox=outbox)
    app.config["TESTING"] = True
    return app.test_client()


def queued(outbox: Outbox) -> int:
    return outbox.stats()["buffered"]


def test_a_range_is_served_from_its_offset(client: FlaskClient) -> None:
    with client.get("/video?path=b.mp4", headers={"Range": "bytes=300-303"}) as response:
        assert response.status_code == 206
        assert response.data == bytes([44, 45, 46, 47])
        assert response.headers["Content-Range"] == "bytes 300-303/1024"


@pytest.mark.parametrize(
    ("headers", "views"),
    [
        ({}, 1),
        ({"Range": "bytes=0-"}, 1),
        ({"Range": "bytes=0-9"}, 1),
        ({"Range": "bytes=1-9"}, 0),
        ({"Range": "bytes=-10"}, 0),
        ({"Range": "bytes=5000-"}, 0),
    ],
)
def test_only_a_start_of_playback_queues_a_view(
    client: FlaskClient, outbox: Outbox, headers: dict[str, str], views: int
) -> None:
    client.get("/video?path=b.mp4", headers=headers).close()
    assert queued(outbox) == views


def test_head_and_not_modified_queue_nothing(client: FlaskClient, outbox: Outbox) -> None:
    with client.head("/video?path=b.mp4") as head:
        etag = head.headers["ETag"]
    with client.get("/video?path=b.mp4", headers={"If-None-Match": etag}) as response:
        assert response.status_code == 304
    assert queued(outbox) == 0


def test_the_view_names_the_video_relative_to_the_folder(client: FlaskClient, outbox: Outbox) -> None:
    client.get("/video").close()
    [view] = [outbox._queue.get_nowait()]
    assert view.video_path == "a.mp4"


@pytest.mark.parametrize(
    ("path", "status"), [("../x", 400), ("/etc/passwd", 400), ("", 400), ("zz.mp4", 404)]
)
def test_bad_names_get_a_reason(client: FlaskClient, path: str, status: int) -> None:
    response = client.get(f"/video?path={path}")
    assert response.status_code == status
    assert response.json["error"]


def test_no_videos_is_404(tmp_path: Path, outbox: Outbox) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    app = create_app({"VIDEOS_DIR": str(empty), "VIEWED_MESSAGING": "http"}, outbox=outbox)
    assert app.test_client().get("/video").status_code == 404


def test_readiness_needs_the_broker_outside_http_mode(tmp_path: Path, outbox: Outbox) -> None:
    env = {
        "VIDEOS_DIR": str(tmp_path),
        "VIEWED_MESSAGING": "queue",
        "RABBIT": "amqp://guest:guest@127.0.0.1:1",
    }
    client = create_app(env, outbox=outbox).test_client()
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json == {"ready": False, "checks": {"broker": False}}
