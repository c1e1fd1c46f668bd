"""The "viewed" event: one playback start of one video, identified by a unique viewId."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# The longest videoPath a view may name (characters); longer ones are refused, not stored and served back.
MAX_VIDEO_PATH = 1024
MAX_VIEW_ID = 200


class InvalidView(ValueError):
    """A body that is not a valid "viewed" message; the message says why."""


def has_unsafe_characters(text: str) -> bool:
    """Whether `text` holds what no name may: NUL or another control character (C0, DEL, C1), or a lone
    surrogate (JSON's "\\ud800" decodes to one; it has no UTF-8 form, so no database or file can hold it)."""
    return any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 or 0xD800 <= ord(char) < 0xE000 for char in text)


def new_view_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> datetime:
    # MongoDB keeps milliseconds: truncate now so a stored and a fresh value compare equal.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class View:
    video_path: str
    view_id: str = field(default_factory=new_view_id)
    viewed_at: datetime = field(default_factory=utc_now)
    # W3C trace context (traceparent, tracestate) of the playback that made the view: it travels in the
    # message's headers, not in its body, and is no part of the view's identity.
    trace: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, str]:
        return {"videoPath": self.video_path, "viewId": self.view_id, "viewedAt": iso_utc(self.viewed_at)}

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json()).encode()

    @classmethod
    def from_json(cls, data: Any, fallback_id: str | None = None) -> View:
        """Validate a decoded body; viewId falls back to `fallback_id`, then to a new id."""
        if not isinstance(data, dict):
            raise InvalidView("body must be a JSON object")
        path = data.get("videoPath")
        if not isinstance(path, str) or not path.strip():
            raise InvalidView("videoPath must be a non-empty string")
        if len(path) > MAX_VIDEO_PATH:
            raise InvalidView(f"videoPath must be at most {MAX_VIDEO_PATH} characters, got {len(path)}")
        if has_unsafe_characters(path):
            raise InvalidView("videoPath must not contain control characters or lone surrogates")
        view_id = data.get("viewId", fallback_id) or new_view_id()
        if not isinstance(view_id, str) or len(view_id) > MAX_VIEW_ID or has_unsafe_characters(view_id):
            raise InvalidView(f"viewId must be a string of at most {MAX_VIEW_ID} printable characters")
        viewed_at = parse_iso_utc(data["viewedAt"]) if data.get("viewedAt") is not None else utc_now()
        return cls(video_path=path, view_id=view_id, viewed_at=viewed_at)

    @classmethod
    def from_bytes(cls, body: bytes, fallback_id: str | None = None) -> View:
        try:
            data = json.loads(body)
        except ValueError as error:  # not UTF-8, not JSON, or an integer of more than 4,300 digits
            raise InvalidView(f"body is not JSON: {error}") from None
        except RecursionError:
            raise InvalidView("body is nested too deeply") from None
        return cls.from_json(data, fallback_id)


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with a Z suffix and millisecond precision."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso_utc(value: Any) -> datetime:
    if not isinstance(value, str):
        raise InvalidView("viewedAt must be an ISO-8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidView(f"viewedAt is not ISO-8601: {value[:40]!r}") from None
    if moment.tzinfo is None:
        raise InvalidView("viewedAt must carry a time zone (e.g. a trailing Z)")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise InvalidView(f"viewedAt is out of range: {value[:40]!r}") from None
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
