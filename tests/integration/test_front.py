"""video-streaming's front (nginx from the Procfile's web: line) and its app (app: line), over real HTTP.

The app decides and nginx sends: whatever a client sends, the status and the first byte nginx answers
with must be the ones the app counted the view by, the files must be reachable only through the app's
decision, and names the app resolves must reach nginx intact.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests

from tests.harness import FlixTube, wait_until
from tests.integration.test_streaming import file_bytes, settle, stream, video, viewed

__all__ = ["stream", "viewed"]  # fixtures shared with test_streaming

HOSTILE_HEADERS = [
    {},
    {"Range": "bytes=0-"},
    {"Range": "bytes=0-0"},
    {"Range": "BYTES=0-10"},
    {"Range": "bytes=0-1,5-6"},  # several ranges: the whole file
    {"Range": "bytes=5-6,0-1"},
    {"Range": "bytes = 0-1"},
    {"Range": "bytes=100-50"},  # invalid
    {"Range": "bytes=-0"},
    {"Range": "bytes=-99999999999"},  # a suffix longer than the file: from byte 0
    {"Range": "bytes=0-99999999999999999999999"},  # past nginx's offsets
    {"Range": "bytes=1020-" + "9" * 100},
    {"Range": "bytes=5000000-5000001,6000000-"},  # several, none satisfiable: 416
    {"Range": "bytes=1000-1001,-5"},
    {"Range": "bytes=--1"},
    {"Range": "bytes=0-1,,"},
    {"Range": "bytes="},
    {"Range": "bytes=" + "9" * 5000 + "-"},
    {"Range": "bytes=abc"},
    {"Range": "items=0-10"},
    {"Range": "bytes=10-20", "If-Range": '"nope"'},  # a stale If-Range: the whole file
    {"Range": "bytes=10-20", "If-Range": "Mon, 01 Jan 1990 00:00:00 GMT"},
    {"Range": "bytes=0-20", "If-Range": "not a date"},
    {"If-Match": '"nope"'},
    {"If-Match": "*"},
    {"If-Unmodified-Since": "Mon, 01 Jan 1990 00:00:00 GMT"},
    {"If-None-Match": "*"},
    {"If-None-Match": '"a", "b"'},
    {"If-Modified-Since": "garbage"},
    {"If-Modified-Since": "Mon, 01 Jan 1990 00:00:00 GMT", "Range": "bytes=1-2"},
]


def starts_at_zero(response: requests.Response) -> bool:
    if response.status_code == 200:
        return True
    return response.status_code == 206 and response.headers["Content-Range"].startswith("bytes 0-")


def test_whatever_the_client_sends_views_follow_what_nginx_answered(stream: FlixTube, viewed: list) -> None:
    data = file_bytes(stream)
    head = video(stream, method="HEAD")
    current = [
        {"If-Range": head.headers["ETag"], "Range": "bytes=10-20"},
        {"If-Range": head.headers["Last-Modified"], "Range": "bytes=0-20"},
        {"If-Match": head.headers["ETag"], "Range": "bytes=7-"},
        {"If-None-Match": f"W/{head.headers['ETag']}"},
    ]
    starts = 0
    for headers in HOSTILE_HEADERS + current:
        response = video(stream, **headers)
        assert response.status_code in (200, 206, 304, 412, 416), (headers, response.status_code)
        if response.status_code == 200:
            assert response.content == data, headers
        if response.status_code == 206:
            first, last = response.headers["Content-Range"].split()[1].split("/")[0].split("-")
            assert response.content == data[int(first) : int(last) + 1], headers
            assert response.headers["Accept-Ranges"] == "bytes"
        starts += starts_at_zero(response)
    assert len(settle(stream, viewed)) == starts


@pytest.mark.parametrize(
    "target",
    [
        "/_whole/big.mp4",
        "/_range/big.mp4",
        "/%5Fwhole/big.mp4",
        "/video/../_whole/big.mp4",
        "/_whole/../secret.txt",
        "/big.mp4",
        "/videos/big.mp4",
    ],
)
def test_the_files_are_reachable_only_through_the_app(stream: FlixTube, target: str) -> None:
    response = requests.get(stream.url("video-streaming", target), timeout=10)
    assert response.status_code == 404
    assert response.content != file_bytes(stream)
    assert b"not a video" not in response.content


def test_names_reach_nginx_intact(stream: FlixTube, viewed: list) -> None:
    """Spaces, percent signs, non-ASCII; and a symlink inside the folder is served as its real file."""
    odd = "odd name 100% \u00fc.mp4"
    shutil.copy(Path(stream.videos_dir, "a-sample.mp4"), Path(stream.videos_dir, odd))
    Path(stream.videos_dir, "more", "alias.mp4").symlink_to(Path(stream.videos_dir, "big.mp4"))
    try:
        response = video(stream, odd, Range="bytes=5-9")
        assert response.status_code == 206
        assert response.content == file_bytes(stream, "a-sample.mp4")[5:10]
        assert video(stream, "more/alias.mp4").content == file_bytes(stream)
        assert sorted(m["videoPath"] for m in settle(stream, viewed)) == ["more/alias.mp4"]
    finally:
        Path(stream.videos_dir, odd).unlink()
        Path(stream.videos_dir, "more", "alias.mp4").unlink()


def test_readiness_through_the_front_fails_without_the_app_or_nginx(start_flixtube) -> None:
    app = start_flixtube("http", ("video-streaming",))
    ready = app.url("video-streaming", "/readyz")
    assert requests.get(ready, timeout=2).status_code == 200
    app.processes["video-streaming.app"].stop()
    # gunicorn may still finish a request on a kept-alive connection while it shuts down.
    wait_until(lambda: requests.get(ready, timeout=2).status_code == 503, timeout=40, what="a 503")
    assert requests.get(ready, timeout=2).json()["error"]
    app.processes["video-streaming.web"].stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(ready, timeout=2)
