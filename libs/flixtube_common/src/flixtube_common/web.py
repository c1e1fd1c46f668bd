"""The Flask pieces every service has: JSON errors, one log line, metrics and a span per request, health
and readiness, and `/metrics`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from flask import Flask, Response, abort, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from flixtube_common import metrics, tracing
from flixtube_common.logs import event

LOGGER = logging.getLogger("flixtube.request")

Check = Callable[[], bool]
QUIET_PATHS = ("/healthz", "/readyz", "/metrics")  # probes and scrapes: no trace; logged only when failed

# The largest request body any route reads: a view is well under 2 KiB. Larger bodies are answered 413.
MAX_BODY_BYTES = 16 * 1024
# The most digits a numeric query parameter may have (more is no number any route could use).
MAX_DIGITS = 12


class Background(Protocol):
    """Work a process runs beside its requests; started after gunicorn forks, closed at worker exit."""

    def start(self) -> None: ...

    def close(self, timeout: float = 5.0) -> None: ...


def create_base_app(import_name: str, service: str) -> Flask:
    app = Flask(import_name)
    app.config["SERVICE"] = service
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["flixtube.checks"] = {}
    app.extensions["flixtube.background"] = []
    app.register_error_handler(HTTPException, _json_error)
    app.before_request(_start_request)
    app.after_request(_log_request)
    app.teardown_request(_end_request)
    app.add_url_rule("/healthz", "healthz", _healthz)
    app.add_url_rule("/readyz", "readyz", _readyz)
    metrics.register(app)
    tracing.configure(service)
    return app


def add_readiness_check(app: Flask, name: str, check: Check) -> None:
    """`/readyz` answers 200 only while every check passes; each check must be quick (well under 1 s)."""
    app.extensions["flixtube.checks"][name] = check


def add_background(app: Flask, work: Background) -> None:
    app.extensions["flixtube.background"].append(work)


def background(app: Flask) -> list[Background]:
    return app.extensions["flixtube.background"]


def query_int(name: str, default: int, cap: int) -> int:
    """A non-negative integer query parameter, capped; anything else is a 400 naming the parameter."""
    raw = request.args.get(name)
    if raw is None:
        return default
    # str.isdigit() alone also takes digits such as "²" that int() refuses.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_DIGITS:
        abort(400, description=f"{name} must be a non-negative integer of at most {MAX_DIGITS} digits")
    return min(int(raw), cap)


def read_body() -> bytes:
    """The request body, or a 413 if it is MAX_BODY_BYTES or more.

    werkzeug answers 413 itself for a Content-Length over the limit, but cuts a body of unknown length
    (chunked) at the limit without a word: a body that fills the limit is taken to be longer.
    """
    data = request.get_data(cache=False)
    if len(data) >= MAX_BODY_BYTES:
        abort(413, description=f"the request body must be under {MAX_BODY_BYTES} bytes")
    return data


def _json_error(error: HTTPException) -> Response:
    response = jsonify(error=error.description)
    response.status_code = error.code or 500
    # Keep what the error says in headers (Content-Range on a 416, Allow on a 405).
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _healthz() -> Response:
    return jsonify(status="ok")


def _readyz() -> tuple[Response, int]:
    checks = {name: _passes(check) for name, check in _checks().items()}
    ready = all(checks.values())
    return jsonify(ready=ready, checks=checks), 200 if ready else 503


def _checks() -> dict[str, Check]:
    return current_app.extensions["flixtube.checks"]


def _passes(check: Check) -> bool:
    try:
        return bool(check())
    except Exception:
        LOGGER.warning("readiness check failed", exc_info=True)
        return False


def _rule() -> str | None:
    """The URL rule the request matched (None for a 404): a bounded name, unlike the path."""
    return request.url_rule.rule if request.url_rule else None


def _start_request() -> None:
    g.started = time.perf_counter()
    if tracing.ENABLED and request.path not in QUIET_PATHS:  # a probe or scrape is not worth a trace
        g.span = tracing.start_request(
            metrics.method_of(request.method), metrics.route_of(_rule()), request.path, request.headers
        )


def _log_request(response: Response) -> Response:
    g.status = response.status_code
    elapsed = time.perf_counter() - g.get("started", 0)
    metrics.observe_request(_rule(), request.method, response.status_code, elapsed)
    if request.path not in QUIET_PATHS or response.status_code >= 400:
        event(
            LOGGER,
            "request",
            method=request.method,
            path=request.path,
            query=request.query_string.decode(),
            status=response.status_code,
            ms=round(elapsed * 1000, 1),
        )
    return response


def _end_request(error: BaseException | None) -> None:
    if "span" in g:
        tracing.end_request(g.pop("span"), g.get("status", 500), error)
