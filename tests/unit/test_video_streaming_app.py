"""video-streaming's request handling with Flask's test client and an outbox that is never started."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from flixtube_common.outbox import Outbox
from flixtube_common.spool import Spool
from tests.fakes import ScriptedTransport
from video_streaming import create_app


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(ScriptedTransport(), Spool(tmp_path / "outbox", 1024 * 1024))


@pytest.fixture
def client(tmp_path: Path, outbox: Outbox) -> FlaskClient:
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "b.mp4").write_bytes(bytes(range(256)) * 4)
    (videos / "a.mp4").write_bytes(b"a" * 10)
    app = create_app(
        {"VIDEOS_DIR": str(videos), "VIEWED_MESSAGING": "http", "OUTBOX_DIR": str(tmp_path / "outbox")},
        outbox=outbox,
    )
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
    [(_row, view)] = outbox.spool.oldest(10)
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
    env = {"VIDEOS_DIR": str(empty), "VIEWED_MESSAGING": "http", "OUTBOX_DIR": str(tmp_path / "outbox")}
    app = create_app(env, outbox=outbox)
    assert app.test_client().get("/video").status_code == 404


def test_readiness_needs_the_broker_outside_http_mode(tmp_path: Path, outbox: Outbox) -> None:
    env = {
        "VIDEOS_DIR": str(tmp_path),
        "VIEWED_MESSAGING": "queue",
        "RABBIT": "amqp://guest:guest@127.0.0.1:1",
        "OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    client = create_app(env, outbox=outbox).test_client()
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json == {"ready": False, "checks": {"broker": False}}
