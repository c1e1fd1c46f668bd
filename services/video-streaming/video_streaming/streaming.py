"""Sending a video: werkzeug decides status and headers, and the body is always sendfile-able.

werkzeug's `send_file(conditional=True)` handles Range, If-Range, ETag and Last-Modified. For a range
it wraps the file in a reader that, under gunicorn, reads and discards everything before the range
(gunicorn's file wrapper cannot seek) and gives up sendfile. So for a 206 the body is replaced by the
file positioned at the range start: PEP 3333 lets the server send from the file's current position
for Content-Length bytes, which gunicorn does with sendfile.
"""

from __future__ import annotations

import mimetypes
from typing import BinaryIO

from flask import Request, Response, abort, send_file
from werkzeug.http import is_resource_modified
from werkzeug.wsgi import wrap_file

from video_streaming.library import Video

CHUNK = 256 * 1024

mimetypes.add_type("video/mp4", ".mp4")
mimetypes.add_type("video/webm", ".webm")


class RangeFile:
    """A file read from `start` for `length` bytes, with the fileno() that lets servers use sendfile."""

    def __init__(self, file: BinaryIO, start: int, length: int) -> None:
        self._file = file
        self._left = length
        file.seek(start)

    def read(self, size: int = -1) -> bytes:
        size = self._left if size < 0 else min(size, self._left)
        data = self._file.read(size)
        self._left -= len(data)
        return data

    def fileno(self) -> int:
        return self._file.fileno()

    def tell(self) -> int:
        return self._file.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def close(self) -> None:
        self._file.close()


def send_video(request: Request, video: Video) -> Response:
    response = send_file(
        video.file,
        mimetype=mimetypes.guess_type(video.path)[0] or "application/octet-stream",
        conditional=True,
        etag=True,
        max_age=0,
    )
    response.accept_ranges = "bytes"  # also on 200 and HEAD answers, so players know they may seek
    if response.status_code == 412:  # werkzeug keeps the file as the body of its 412
        response.close()
        abort(412, description="If-Match or If-Unmodified-Since: the video is not the one asked for")
    if response.status_code == 206 and still_fresh(request, response):
        return not_modified(response)
    # Each read of response.content_range parses the header again: read it once.
    content_range = response.content_range if response.status_code == 206 else None
    if content_range is not None:
        start, stop = content_range.start, content_range.stop
        if start is not None and stop is not None:
            response.response.close()  # type: ignore[union-attr]
            response.response = wrap_file(
                request.environ, RangeFile(video.file.open("rb"), start, stop - start), CHUNK
            )
    return response


def still_fresh(request: Request, response: Response) -> bool:
    """Whether If-None-Match / If-Modified-Since say the client's copy is current.

    RFC 9110 evaluates them before Range, but werkzeug answers a ranged request 206 whatever they say
    (a browser revalidating a cached start of a video would then count a second view).
    """
    etag, _weak = response.get_etag()
    return not is_resource_modified(request.environ, etag=etag, last_modified=response.last_modified)


def not_modified(response: Response) -> Response:
    response.close()  # the file opened for the body
    answer = Response(status=304)
    for name in ("ETag", "Last-Modified", "Cache-Control", "Expires", "Accept-Ranges"):
        if name in response.headers:
            answer.headers[name] = response.headers[name]
    return answer


def is_playback_start(request: Request, response: Response) -> bool:
    """A GET answered with the video's first byte: no Range, or a range from byte 0."""
    if request.method != "GET" or response.status_code not in (200, 206):
        return False
    if response.status_code == 200:
        return True
    content_range = response.content_range
    return content_range is not None and content_range.start == 0
