from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from flixtube_common.views import InvalidView, View, iso_utc


def test_a_bare_message_takes_the_fallback_id_then_a_new_one() -> None:
    assert View.from_bytes(b'{"videoPath": "a.mp4"}', "amqp-id").view_id == "amqp-id"
    first = View.from_bytes(b'{"videoPath": "a.mp4"}').view_id
    assert first != View.from_bytes(b'{"videoPath": "a.mp4"}').view_id


def test_fields_round_trip_through_json() -> None:
    view = View("a.mp4", "id-1", datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))
    assert view.to_json() == {"videoPath": "a.mp4", "viewId": "id-1", "viewedAt": "2026-01-02T03:04:05.678Z"}
    assert View.from_bytes(view.to_bytes()) == view


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff", "not JSON"),
        (b"nope", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"videoPath": " "}', "videoPath"),
        (b'{"videoPath": ["a"]}', "videoPath"),
        (b'{"videoPath": "a", "viewId": 5}', "viewId"),
        (b'{"videoPath": "a", "viewedAt": "yesterday"}', "viewedAt"),
        (b'{"videoPath": "a", "viewedAt": "2026-01-01T00:00:00"}', "time zone"),
    ],
)
def test_invalid_bodies_say_why(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidView, match=reason):
        View.from_bytes(body)


def test_viewed_at_is_normalised_to_utc_milliseconds() -> None:
    view = View.from_bytes(
        json.dumps({"videoPath": "a", "viewedAt": "2026-01-01T02:00:00.123456+02:00"}).encode()
    )
    assert iso_utc(view.viewed_at) == "2026-01-01T00:00:00.123Z"
