"""Prometheus metrics of every FlixTube process, and the `GET /metrics` that exposes them.

Names follow Prometheus' conventions: a `flixtube_` prefix, the unit in the name, `_total` on counters
(prometheus_client appends it), and only bounded labels: a route is the URL rule (`/video`), never the
requested path, and no label ever holds a video name or a viewId.

Under gunicorn every worker is a process of its own: the gunicorn config gives the master a fresh
`PROMETHEUS_MULTIPROC_DIR` before the app is imported, each process then keeps its values in files
there, and `/metrics` adds them up (multiprocess mode; gauges say how, e.g. `livesum`). The consumer
processes are not gunicorn's: each serves its own metrics on `METRICS_PORT` (see `serve`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from flask import Flask, Response, request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from flixtube_common import config

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

# A `_created` series beside every counter doubles what is scraped for a time that Prometheus can tell.
disable_created_metrics()

# Requests (every service).
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"  # a request no URL rule matched (a 404): its path is not a label
REQUESTS = Counter(
    "flixtube_http_requests",
    "HTTP requests answered, by route (the URL rule), method and status code.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "flixtube_http_request_duration_seconds",
    "Time from a request's arrival until its response is ready, by route and method (a streamed body "
    "is sent after that).",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# video-streaming.
PLAYBACK_STARTS = Counter("flixtube_playback_starts", "Playback starts (each announces one view).")
STREAMED_BYTES = Counter(
    "flixtube_streamed_bytes",
    "Bytes of video the service answered with: the length of each 200/206 body it decided to send "
    "(a client that hangs up early is counted in full).",
)
VIEWS_PUBLISHED = Counter(
    "flixtube_views_published", "Views handed to the transport (broker or history), retries included."
)
VIEWS_CONFIRMED = Counter(
    "flixtube_views_confirmed", "Views the broker confirmed (or history accepted) in http mode."
)
VIEWS_RETRIED = Counter("flixtube_views_retried", "Views whose delivery failed and will be sent again.")
VIEWS_DROPPED = Counter(
    "flixtube_views_dropped",
    "Views given up: refused by a full outbox (outbox_full), or rejected by the receiver.",
    ["reason"],
)
DROP_REASONS = ("outbox_full", "rejected")
for _reason in DROP_REASONS:  # each series exists from the start at 0, so increase() sees the first drop
    VIEWS_DROPPED.labels(_reason)
OUTBOX_VIEWS = Gauge(
    "flixtube_outbox_views", "Views waiting in the outbox (on disk) to be sent.", multiprocess_mode="livesum"
)

# history and recommendations, by subscriber (the service's name).
VIEWS_CONSUMED = Counter("flixtube_views_consumed", "Viewed messages received, valid or not.", ["subscriber"])
VIEWS_STORED = Counter("flixtube_views_stored", "Views stored for the first time.", ["subscriber"])
VIEWS_DUPLICATES = Counter(
    "flixtube_views_duplicates", "Views received again and ignored (their viewId was stored).", ["subscriber"]
)
VIEWS_DEAD_LETTERED = Counter(
    "flixtube_views_dead_lettered",
    "Messages sent to the dead-letter queue: invalid (not a view) or handler_failed.",
    ["subscriber", "reason"],
)
DEAD_LETTER_REASONS = ("invalid", "handler_failed")
STORE_OUTAGES = Counter(
    "flixtube_store_outages", "Times the database failed a write and consumption paused.", ["subscriber"]
)
CONSUMER_PAUSED = Gauge(
    "flixtube_consumer_paused",
    "1 while consumption is paused because the database is down.",
    ["subscriber"],
    multiprocess_mode="livemax",
)
CONSUMER_LAG = Gauge(
    "flixtube_consumer_lag_messages",
    "Messages waiting in the subscriber's queue (ready, not yet delivered), sampled every few seconds.",
    ["subscriber", "queue"],
    multiprocess_mode="livemax",
)


@dataclass(frozen=True)
class SubscriberMetrics:
    """The metrics of one subscriber, with their label already bound (binding costs a lookup each time)."""

    consumed: Counter
    stored: Counter
    duplicates: Counter
    dead_lettered: dict[str, Counter]
    outages: Counter
    paused: Gauge

    @classmethod
    def of(cls, subscriber: str) -> SubscriberMetrics:
        return cls(
            consumed=VIEWS_CONSUMED.labels(subscriber),
            stored=VIEWS_STORED.labels(subscriber),
            duplicates=VIEWS_DUPLICATES.labels(subscriber),
            dead_lettered={
                reason: VIEWS_DEAD_LETTERED.labels(subscriber, reason) for reason in DEAD_LETTER_REASONS
            },
            outages=STORE_OUTAGES.labels(subscriber),
            paused=CONSUMER_PAUSED.labels(subscriber),
        )

    def recorded(self, stored: list[bool]) -> None:
        """Count the outcome of a write: True for each view stored, False for each duplicate."""
        new = sum(stored)
        if new:
            self.stored.inc(new)
        if new < len(stored):
            self.duplicates.inc(len(stored) - new)


def route_of(rule: str | None) -> str:
    return rule if rule is not None else UNMATCHED_ROUTE


def method_of(method: str) -> str:
    """The method as a label: any method outside the usual few is `other` (a client may send any token)."""
    return method if method in HTTP_METHODS else "other"


def observe_request(rule: str | None, method: str, status: int, seconds: float) -> None:
    route, method = route_of(rule), method_of(method)
    REQUESTS.labels(route, method, str(status)).inc()
    REQUEST_SECONDS.labels(route, method).observe(seconds)


def registry() -> CollectorRegistry:
    """What `/metrics` shows: every process's values in multiprocess mode, else this process's."""
    if not os.environ.get(MULTIPROC_DIR):
        return REGISTRY
    merged = CollectorRegistry()
    MultiProcessCollector(merged)
    return merged


def exposition(accept: str | None) -> tuple[bytes, str]:
    """The metrics as the scraper asked (Prometheus text, or OpenMetrics), and their content type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry()), content_type


def register(app: Flask) -> None:
    """Add `GET /metrics` to the app."""

    def metrics_view() -> Response:
        body, content_type = exposition(request.headers.get("Accept"))
        return Response(body, content_type=content_type)

    app.add_url_rule("/metrics", "metrics", metrics_view)


def serve(env: config.Env) -> int | None:
    """Serve this process's metrics on `METRICS_PORT` (a consumer process); None when it is not set.

    A consumer is a process of its own, beside (not under) gunicorn: it has no share in the web
    process's multiprocess folder, whose master clears it when it restarts, so it answers scrapes itself.
    """
    if not env.get("METRICS_PORT", "").strip():
        return None
    port = config.port(env, "METRICS_PORT")
    start_http_server(port, registry=registry())
    return port
