"""Which `Range` header to honour: RFC 9110 lets a server ignore one, and werkzeug would answer 416.

werkzeug answers 416 for a Range it cannot parse, for a unit other than bytes, and for several ranges
(it serves a single one). RFC 9110 allows 416 only when no range is satisfiable, and always allows
ignoring Range (a 200 with the whole file). So such a header is removed before the answer is built: a
malformed header or a foreign unit is ignored; of several ranges, the file is sent whole if any of them
is satisfiable, and 416 stays the answer when none is.
"""

from __future__ import annotations

from werkzeug.datastructures import Range
from werkzeug.http import parse_range_header
from werkzeug.sansio.request import Request


def drop_unservable_range(request: Request, size: int) -> None:
    """Remove the request's Range header when it is to be ignored.

    Call it before anything reads `request.range` (werkzeug parses the header once and keeps the result).
    """
    header = request.headers.get("Range")
    if header is None:
        return
    parsed = parse_range_header(header)
    if (
        parsed is None
        or parsed.units != "bytes"
        or (len(parsed.ranges) > 1 and _any_satisfiable(parsed, size))
    ):
        request.environ.pop("HTTP_RANGE", None)


def _any_satisfiable(parsed: Range, size: int) -> bool:
    # werkzeug's form: (start, stop) with stop exclusive or None; a suffix range is (-length, None).
    return any(start < 0 or start < size for start, _stop in parsed.ranges) if size else False
