"""What to answer for a video: the app decides, nginx sends the bytes.

The app checks the validators and the range and answers 304, 412 and 416 itself. Anything else it hands to
nginx with `X-Accel-Redirect` to an `internal` location of the front (nginx/nginx.conf.template), which
sends the file with sendfile: `/_whole/` for a 200 (nginx ignores any Range there, `max_ranges 0`) or
`/_range/` for a 206 (nginx's own range handling). nginx makes the ETag and Last-Modified of what it sends
from the file, so the app computes the same ones, the way nginx does; nginx then checks the same
conditions on the same validators and, for a 206, parses the same single range, so the status and the
first byte the app counted views by are those the client gets.

Rules, in RFC 9110's order and nginx's semantics: If-Match (strong) / If-Unmodified-Since → 412;
If-None-Match (weak) / If-Modified-Since → 304; If-Range (exact ETag or exact date) and one range
`bytes=a-b`, `bytes=a-`, `bytes=-n` → 206, or 416 when it starts past the end. Several ranges of which
none is satisfiable → 416. Any other Range header (several ranges, spaces, other units, malformed) is
ignored and the whole file is sent, as RFC 9110 allows.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from flask import Request, Response, abort
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import http_date, parse_date, parse_range_header

from video_streaming.library import Video

WHOLE = "/_whole/"
RANGE = "/_range/"
SINGLE_RANGE = re.compile(r"bytes=(?:(\d+)-(\d*)|-(\d+))", re.IGNORECASE)
MAX_OFFSET = 2**63 - 1  # nginx's largest file offset

mimetypes.add_type("video/mp4", ".mp4")
mimetypes.add_type("video/webm", ".webm")


@dataclass(frozen=True)
class Validators:
    """The file's ETag and Last-Modified, as nginx makes them: "<mtime hex>-<size hex>", whole seconds."""

    tag: str  # the ETag without its quotes
    last_modified: datetime

    @classmethod
    def of(cls, video: Video) -> Validators:
        stat = video.file.stat()
        mtime = int(stat.st_mtime)
        return cls(f"{mtime:x}-{stat.st_size:x}", datetime.fromtimestamp(mtime, UTC))

    @property
    def etag(self) -> str:
        return f'"{self.tag}"'

    def headers(self) -> dict[str, str]:
        return {"ETag": self.etag, "Last-Modified": http_date(self.last_modified)}


@dataclass(frozen=True)
class Plan:
    """What the client will get: the status and, for a 200 or 206, the first byte sent."""

    status: int
    first_byte: int | None = None
    validators: Validators | None = None


def plan(request: Request, video: Video, validators: Validators) -> Plan:
    if not precondition_holds(request, validators):
        return Plan(412)
    if not_modified(request, validators):
        return Plan(304, validators=validators)
    first = requested_first_byte(request, video.size, validators)
    if first is None:
        return Plan(200, 0, validators)
    if first >= video.size:
        return Plan(416)
    return Plan(206, first, validators)


def precondition_holds(request: Request, validators: Validators) -> bool:
    """If-Match (strong comparison) or else If-Unmodified-Since; a failed one is a 412."""
    if "If-Match" in request.headers:
        return request.if_match.star_tag or request.if_match.contains(validators.tag)
    since = request.if_unmodified_since
    return since is None or validators.last_modified <= since


def not_modified(request: Request, validators: Validators) -> bool:
    """If-None-Match (weak comparison) or else If-Modified-Since say the client's copy is current."""
    if "If-None-Match" in request.headers:
        return request.if_none_match.star_tag or request.if_none_match.contains_weak(validators.tag)
    since = request.if_modified_since
    return since is not None and validators.last_modified <= since


def requested_first_byte(request: Request, size: int, validators: Validators) -> int | None:
    """The first byte of the one range nginx will send, `size` if no range can be (416); None: the whole."""
    header = request.headers.get("Range")
    if header is None or size == 0 or not if_range_holds(request, validators):
        return None
    match = SINGLE_RANGE.fullmatch(header)
    if match is None:
        return size if none_satisfiable(header, size) else None
    return single_range_first(match, size)


def single_range_first(match: re.Match[str], size: int) -> int | None:
    first, last, suffix = (offset(n) if n else None for n in match.groups())
    if first is not None and first >= size:
        return size
    if any(n is not None and n > MAX_OFFSET for n in (last, suffix)):
        return None  # valid, but nginx refuses numbers past its file offsets: the whole file instead
    if suffix is not None:
        return None if suffix == 0 else max(0, size - suffix)  # "-0" is ignored, as werkzeug does
    assert first is not None
    if last is not None and last < first:
        return None  # an invalid range: ignored, as RFC 9110 allows
    return first


def none_satisfiable(header: str, size: int) -> bool:
    """Several byte ranges of which none starts inside the file: the one case of many that is a 416."""
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) < 2:
        return False
    # werkzeug's form: (start, stop) with stop exclusive or None; a suffix range is (-length, None).
    return not any(start < 0 or start < size for start, _stop in parsed.ranges)


def offset(digits: str) -> int:
    """A byte offset; anything longer than the largest one is MAX_OFFSET + 1 (and no huge int is built)."""
    digits = digits.lstrip("0") or "0"
    return MAX_OFFSET + 1 if len(digits) > len(str(MAX_OFFSET)) else int(digits)


def if_range_holds(request: Request, validators: Validators) -> bool:
    """If-Range as nginx reads it: a value ending in a quote is an ETag compared exactly, else a date."""
    value = request.headers.get("If-Range")
    if value is None:
        return True
    if value.endswith('"'):
        return value == validators.etag
    return parse_date(value) == validators.last_modified


def answer(request: Request, video: Video) -> tuple[Response, Plan]:
    validators = Validators.of(video)
    decided = plan(request, video, validators)
    if decided.status == 412:
        abort(412, description="a precondition (If-Match / If-Unmodified-Since) failed")
    if decided.status == 416:
        raise RequestedRangeNotSatisfiable(
            length=video.size, description=f"the range starts past the end of the video ({video.size} bytes)"
        )
    # nginx puts its own ETag and Last-Modified on what it sends: the same values as these.
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-cache", **validators.headers()}
    if decided.status == 304:
        return Response(status=304, headers=headers), decided
    location = RANGE if decided.status == 206 else WHOLE
    headers["X-Accel-Redirect"] = location + quote(video.real_path)
    mimetype = mimetypes.guess_type(video.path)[0] or "application/octet-stream"
    # The status is what nginx will send; the body is nginx's. Only nginx ever reads this answer.
    return Response(status=decided.status, headers=headers, mimetype=mimetype), decided


def body_length(request: Request, video: Video, decided: Plan) -> int:
    """How many bytes nginx is told to send: the whole file, one range up to its last byte, or none."""
    if decided.status not in (200, 206) or decided.first_byte is None:
        return 0
    last = video.size - 1
    match = SINGLE_RANGE.fullmatch(request.headers.get("Range", "")) if decided.status == 206 else None
    if match is not None and match.group(2):
        last = min(last, offset(match.group(2)))
    return last - decided.first_byte + 1


def is_playback_start(request: Request, decided: Plan) -> bool:
    """A GET answered with the video's first byte: no Range, or a range from byte 0."""
    return request.method == "GET" and decided.status in (200, 206) and decided.first_byte == 0
