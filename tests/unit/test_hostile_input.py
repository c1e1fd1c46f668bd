"""Whatever a client sends, every route answers 2xx or a 4xx with a JSON reason, never a 5xx.

The listed cases are the attacks that found 500s and wrong 416s; the properties throw generated input
at the same handlers (and at the message parser, which every consumer and `POST /viewed` share).
"""

from __future__ import annotations

import io
import json

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import history
import recommendations
from flixtube_common.outbox import Outbox
from flixtube_common.spool import Spool
from flixtube_common.views import MAX_VIDEO_PATH, InvalidView, View, has_unsafe_characters
from flixtube_common.web import MAX_BODY_BYTES
from tests.fakes import MemoryStore, ScriptedTransport
from video_streaming import create_app

SUBSCRIBER_ENV = {"DBHOST": "mongodb://127.0.0.1:1", "VIEWED_MESSAGING": "http"}
VIDEO = bytes(range(256)) * 4  # b.mp4, 1024 bytes
# What an HTTP header can carry: Latin-1 without line breaks (WSGI gives headers as Latin-1 strings).
HEADER_TEXT = st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=60)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def streaming(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    root = tmp_path_factory.mktemp("hostile")
    (root / "videos" / "sub").mkdir(parents=True)
    (root / "videos" / "b.mp4").write_bytes(VIDEO)
    outbox = Outbox(ScriptedTransport(), Spool(root / "outbox", 64 * 1024 * 1024))
    env = {"VIDEOS_DIR": str(root / "videos"), "VIEWED_MESSAGING": "http", "OUTBOX_DIR": str(root / "outbox")}
    return create_app(env, outbox=outbox)


@pytest.fixture(scope="module")
def history_app() -> Flask:
    return history.create_app(SUBSCRIBER_ENV, views=MemoryStore())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def recommendations_app() -> Flask:
    return recommendations.create_app(SUBSCRIBER_ENV, views=MemoryStore())  # type: ignore[arg-type]


def answered_well(response: object, allowed: tuple[int, ...] = ()) -> int:
    """The status, after checking it is no 5xx and that a 4xx says why in JSON."""
    status = response.status_code  # type: ignore[attr-defined]
    assert status < 500, (status, response.get_data()[:300])  # type: ignore[attr-defined]
    if status >= 400 and response.request.method != "HEAD":  # type: ignore[attr-defined]
        assert response.is_json and response.json["error"], response.get_data()[:300]  # type: ignore[attr-defined]
    if allowed:
        assert status in allowed
    return status


# --- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "status", "reason"),
    [
        ("path=%00", 400, "control characters"),
        ("path=b.mp4%00.txt", 400, "control characters"),
        ("path=a%01b", 400, "control characters"),
        ("path=a%7Fb", 400, "control characters"),
        ("path=a%C2%85b", 400, "control characters"),  # NEL, a C1 control
        ("path=" + "a" * (MAX_VIDEO_PATH + 1), 400, "at most 1024 characters"),
        ("path=" + "a" * 256 + ".mp4", 400, "255 bytes"),
        ("path=" + "%C3%A9" * 128, 400, "255 bytes"),  # 128 characters, 256 bytes
        ("path=", 400, "empty"),
        ("path=..%2Fsecret", 400, "inside the videos folder"),
        ("path=%2Fetc%2Fpasswd", 400, "inside the videos folder"),
        ("path=a%5Cb", 400, "forward slashes"),
        ("path=%ED%A0%80", 404, "no video"),  # an encoded surrogate: werkzeug decodes it as U+FFFD
        ("path=%FF%FE", 404, "no video"),
        ("path=sub", 404, "no video"),  # a folder
        ("path=sub%2F..%2F..%2Fb.mp4", 400, "inside the videos folder"),
    ],
)
def test_hostile_names_get_a_4xx_with_a_reason(
    streaming: Flask, query: str, status: int, reason: str
) -> None:
    with streaming.test_client().get(f"/video?{query}") as response:
        assert answered_well(response) == status
        assert reason in response.json["error"]


@PROPERTY
@given(name=st.text(max_size=300))
def test_any_name_is_a_video_or_a_4xx(streaming: Flask, name: str) -> None:
    with streaming.test_client().get("/video", query_string={"path": name}) as response:
        answered_well(response, (200, 400, 404))


def test_a_name_that_stays_inside_is_served_under_its_plain_name(streaming: Flask) -> None:
    with streaming.test_client().get("/video?path=sub%2F..%2F.%2Fb.mp4%2F") as response:
        assert (response.status_code, response.data) == (200, VIDEO)


# --- ranges ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "status", "body"),
    [
        ("bytes=0-1,5-9", 200, VIDEO),  # several satisfiable ranges: RFC 9110 lets us send it whole
        ("bytes=1000-1001,-5", 200, VIDEO),  # one of them satisfiable is enough
        ("bytes=5000-5001,6000-", 416, None),  # none satisfiable
        ("bytes=2000-", 416, None),
        ("bytes=abc", 200, VIDEO),  # malformed: ignored
        ("bytes=9-5", 200, VIDEO),
        ("bytes=-0", 200, VIDEO),
        ("bytes=--1", 200, VIDEO),
        ("bytes=0-1,,", 200, VIDEO),
        ("bytes=", 200, VIDEO),
        ("bytes", 200, VIDEO),
        ("items=0-1", 200, VIDEO),  # a unit we do not serve: ignored
        ("bytes=0-" + "9" * 100, 206, VIDEO),
        ("bytes=1020-" + "9" * 100, 206, VIDEO[1020:]),
        ("bytes=0-1, 3-4, 0-1", 200, VIDEO),
    ],
)
def test_multi_and_malformed_ranges_follow_rfc_9110(
    streaming: Flask, header: str, status: int, body: bytes | None
) -> None:
    with streaming.test_client().get("/video?path=b.mp4", headers={"Range": header}) as response:
        assert answered_well(response) == status
        if body is not None:
            assert response.data == body
        if status == 416:
            assert response.headers["Content-Range"] == "bytes */1024"


@PROPERTY
@given(header=st.one_of(HEADER_TEXT, st.from_regex(r"\Abytes=[0-9, -]{0,40}\Z")))
def test_any_range_header_is_answered_200_206_or_416(streaming: Flask, header: str) -> None:
    with streaming.test_client().get("/video?path=b.mp4", headers={"Range": header}) as response:
        answered_well(response, (200, 206, 416))


@PROPERTY
@given(
    headers=st.dictionaries(
        st.sampled_from(["Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match"]),
        HEADER_TEXT,
    ),
    method=st.sampled_from(["GET", "HEAD"]),
)
def test_any_conditional_headers_are_answered_well(
    streaming: Flask, headers: dict[str, str], method: str
) -> None:
    with streaming.test_client().open("/video?path=b.mp4", method=method, headers=headers) as response:
        answered_well(response, (200, 206, 304, 412, 416))


# --- bodies ---------------------------------------------------------------------------------------


def post_viewed(app: Flask, body: bytes) -> object:
    return app.test_client().post("/viewed", data=body, content_type="application/json")


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"[" * 10_000, 400, "nested too deeply"),
        (b'{"a":' * 2000 + b"1" + b"}" * 2000, 400, "nested too deeply"),
        (b"x" * (5 * 1024 * 1024), 413, "exceeds the capacity limit"),
        (json.dumps({"videoPath": "v" * 5_000_000}).encode(), 413, "exceeds the capacity limit"),
        (json.dumps({"videoPath": "v" * (MAX_VIDEO_PATH + 1)}).encode(), 400, "at most 1024 characters"),
        (b'{"videoPath": "a\\u0000b"}', 400, "control characters"),
        (b'{"videoPath": "\\ud800"}', 400, "lone surrogates"),
        (b'{"videoPath": "a", "viewedAt": 5}', 400, "viewedAt"),
        (b'{"videoPath": "a", "viewedAt": 1e999}', 400, "viewedAt"),
        (b'{"videoPath": "a", "viewedAt": ["2026-01-01T00:00:00Z"]}', 400, "viewedAt"),
        (b'{"videoPath": "a", "viewedAt": "0001-01-01T00:00:00+01:00"}', 400, "out of range"),
        (b'{"videoPath": "a", "viewedAt": "2026-13-01T00:00:00Z"}', 400, "ISO-8601"),
        (b'{"videoPath": "a", "viewId": 5}', 400, "viewId"),
        (b'{"videoPath": "a", "viewId": {"$gt": ""}}', 400, "viewId"),
        (b'{"videoPath": "a", "viewId": true}', 400, "viewId"),
        (json.dumps({"videoPath": "a", "viewId": "i" * 201}).encode(), 400, "viewId"),
        (b'{"videoPath": "a", "viewId": "a\\nb"}', 400, "viewId"),
        (b'{"videoPath": ' + b"1" * 5000 + b"}", 400, "not JSON"),  # more digits than Python converts
        (b'{"videoPath": {"$ne": null}}', 400, "videoPath"),
        (b"\xff\xfe", 400, "not JSON"),
        (b"", 400, "not JSON"),
    ],
)
def test_hostile_bodies_get_a_4xx_with_a_reason(
    history_app: Flask, body: bytes, status: int, reason: str
) -> None:
    response = post_viewed(history_app, body)
    assert answered_well(response) == status
    assert reason in response.json["error"]  # type: ignore[attr-defined]


def test_a_chunked_body_over_the_limit_is_413(history_app: Flask) -> None:
    """A body of unknown length (chunked: gunicorn marks the input as terminated) is cut at the limit."""
    body = io.BytesIO(b'{"videoPath": "' + b"v" * MAX_BODY_BYTES + b'"}')
    response = history_app.test_client().post(
        "/viewed",
        input_stream=body,
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert answered_well(response) == 413


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
VIEWISH = st.fixed_dictionaries(
    {},
    optional={
        "videoPath": st.one_of(JSON, st.text(max_size=40)),
        "viewId": st.one_of(JSON, st.text(max_size=40)),
        "viewedAt": st.one_of(JSON, st.datetimes().map(lambda d: d.isoformat() + "Z"), st.text(max_size=40)),
    },
)


@PROPERTY
@given(
    body=st.one_of(
        st.binary(max_size=200),
        JSON.map(lambda v: json.dumps(v).encode()),
        VIEWISH.map(lambda v: json.dumps(v).encode()),
    )
)
def test_any_body_is_a_view_or_a_400(history_app: Flask, body: bytes) -> None:
    response = post_viewed(history_app, body)
    answered_well(response, (200, 400))
    try:
        view = View.from_bytes(body)
    except InvalidView:
        assert response.status_code == 400  # type: ignore[attr-defined]
    else:
        assert response.status_code == 200  # type: ignore[attr-defined]
        assert response.json["viewId"]  # type: ignore[attr-defined]
        assert view.video_path


@PROPERTY
@given(body=st.one_of(st.binary(max_size=300), VIEWISH.map(lambda v: json.dumps(v).encode())))
def test_the_message_parser_gives_a_valid_view_or_says_why(body: bytes) -> None:
    try:
        view = View.from_bytes(body, "fallback")
    except InvalidView as error:
        assert str(error)
        return
    assert view.video_path.strip() and len(view.video_path) <= MAX_VIDEO_PATH
    assert not has_unsafe_characters(view.video_path + view.view_id)
    assert view.viewed_at.tzinfo is not None
    assert View.from_bytes(view.to_bytes()) == view  # what we store and send reads back the same


# --- query strings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["²", "١٢", "9" * 13, "99999999999999999999999999", "1e3", " 1", "0x10", "-0"]
)
def test_hostile_paging_is_400(history_app: Flask, recommendations_app: Flask, value: str) -> None:
    for app, path in ((history_app, "/history"), (recommendations_app, "/recommendations")):
        response = app.test_client().get(path, query_string={"limit": value})
        assert answered_well(response) == 400
        assert response.json["error"].startswith("limit")


def test_an_oversized_body_is_413_on_every_service(
    streaming: Flask, history_app: Flask, recommendations_app: Flask
) -> None:
    body = b"x" * (MAX_BODY_BYTES + 1)
    assert answered_well(post_viewed(history_app, body)) == 413
    for app, path in ((streaming, "/video"), (recommendations_app, "/recommendations")):
        assert app.config["MAX_CONTENT_LENGTH"] == MAX_BODY_BYTES
        answered_well(app.test_client().post(path, data=body), (405,))
