"""Metrics and traces of the real processes: every scrape parses, each event counts, each view is a trace.

Tracing uses the console exporter (one JSON line per span in each process's log), exported every 100 ms.
"""

from __future__ import annotations

import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import StartFlixTube
from tests.harness import FlixTube, MongoServer, publish, view_body, wait_until

TRACED = {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "100"}
SUBSCRIBERS = {
    "history": ("history.viewed", "videos"),
    "recommendations": ("recommendations.viewed", "views"),
}
PLAYS = 4

Span = dict[str, Any]


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample at `url`, read with prometheus_client's own parser: {(name, labels): value}."""
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def worker_metrics(app: FlixTube, service: str) -> dict:
    return scrape(f"http://127.0.0.1:{app.metrics_ports[service]}/metrics")


def play(app: FlixTube, name: str) -> None:
    """A playback start (a range from byte 0), then a later range of the same playback."""
    for header in ("bytes=0-65535", "bytes=65536-131071"):
        response = requests.get(
            app.url("video-streaming", "/video"), params={"path": name}, headers={"Range": header}, timeout=10
        )
        assert response.status_code == 206


def spans(app: FlixTube, process: str) -> list[Span]:
    lines = app.processes[process].output().splitlines()
    return [json.loads(line) for line in lines if line.startswith('{"name"')]


def logged(app: FlixTube, process: str, event: str) -> list[dict[str, Any]]:
    lines = app.processes[process].output().splitlines()
    records = [json.loads(line) for line in lines if line.startswith('{"ts"')]
    return [record for record in records if record["event"] == event]


def hex_id(value: str) -> str:
    return value.removeprefix("0x")


def by_trace(found: list[Span]) -> dict[str, list[Span]]:
    traces: dict[str, list[Span]] = defaultdict(list)
    for span in found:
        traces[hex_id(span["context"]["trace_id"])].append(span)
    return traces


def the_one(trace: list[Span], name: str) -> Span:
    (span,) = [span for span in trace if span["name"] == name]
    return span


def child_of(span: Span, parent: Span) -> bool:
    return span["parent_id"] == parent["context"]["span_id"]


def starts(app: FlixTube) -> list[Span]:
    """video-streaming's request spans of playback starts (the ones that sent a view)."""
    found = spans(app, "video-streaming.app")
    sent = {span["parent_id"] for span in found if span["name"] == "send viewed"}
    return [span for span in found if span["name"] == "GET /video" and span["context"]["span_id"] in sent]


def test_each_view_is_one_trace_from_its_request_to_both_database_writes(start_flixtube: StartFlixTube):
    app = start_flixtube("fanout", env=TRACED)
    for index in range(PLAYS):
        play(app, f"{'big.mp4' if index % 2 else 'a-sample.mp4'}")

    def complete() -> bool:
        writes = {name: by_trace(spans(app, f"{name}.worker")) for name in SUBSCRIBERS}
        ids = [hex_id(span["context"]["trace_id"]) for span in starts(app)]
        return len(ids) == PLAYS and all(
            any(span["name"].startswith("insert") for span in writes[name].get(trace_id, []))
            for trace_id in ids
            for name in SUBSCRIBERS
        )

    wait_until(complete, timeout=60, what="every view's spans in both subscribers")
    requests_seen = [s for s in spans(app, "video-streaming.app") if s["name"] == "GET /video"]
    assert len(requests_seen) == 2 * PLAYS  # the later ranges are traced too, but sent no view
    sent = by_trace(spans(app, "video-streaming.app"))
    request_log = {r["traceId"]: r for r in logged(app, "video-streaming.app", "request") if "traceId" in r}
    for request in starts(app):
        trace_id = hex_id(request["context"]["trace_id"])
        assert request["kind"] == "SpanKind.SERVER" and request["parent_id"] is None
        assert request["attributes"]["http.route"] == "/video"
        assert request["attributes"]["http.response.status_code"] == 206
        assert request_log[trace_id]["spanId"] == hex_id(request["context"]["span_id"])
        send = the_one(sent[trace_id], "send viewed")
        assert send["kind"] == "SpanKind.PRODUCER" and child_of(send, request)
        view_id = send["attributes"]["messaging.message.id"]
        for name, (queue, collection) in SUBSCRIBERS.items():
            trace = by_trace(spans(app, f"{name}.worker"))[trace_id]
            process = the_one(trace, f"process {queue}")
            write = the_one(trace, f"insert {collection}")
            assert process["kind"] == "SpanKind.CONSUMER" and child_of(process, send)
            assert process["attributes"]["messaging.message.id"] == view_id
            assert write["kind"] == "SpanKind.CLIENT" and child_of(write, process)
            assert write["attributes"]["db.system.name"] == "mongodb"
            assert {span["resource"]["attributes"]["service.name"] for span in trace} == {name}
            stored = [r for r in logged(app, f"{name}.worker", "view stored") if r["viewId"] == view_id]
            assert [r["traceId"] for r in stored] == [trace_id]


def test_in_http_mode_the_post_to_history_continues_the_trace(start_flixtube: StartFlixTube):
    app = start_flixtube("http", services=("video-streaming", "history"), env=TRACED)
    play(app, "big.mp4")

    def post_span() -> Span | None:
        found = [span for span in spans(app, "history.web") if span["name"] == "POST /viewed"]
        return found[0] if found else None

    post = wait_until(post_span, what="history's POST /viewed span")
    (request,) = wait_until(lambda: starts(app), what="video-streaming's spans")
    trace_id = hex_id(request["context"]["trace_id"])
    send = the_one(by_trace(spans(app, "video-streaming.app"))[trace_id], "send viewed")
    assert hex_id(post["context"]["trace_id"]) == trace_id and child_of(post, send)
    write = wait_until(
        lambda: [s for s in spans(app, "history.web") if s["name"] == "insert videos"], what="the write span"
    )[0]
    assert child_of(write, post)


def test_without_otel_settings_nothing_is_traced(start_flixtube: StartFlixTube):
    app = start_flixtube("http", services=("video-streaming", "history"))
    play(app, "big.mp4")
    wait_until(app.history, what="the view")
    for process in ("video-streaming.app", "history.web"):
        assert spans(app, process) == []
        assert all("traceId" not in record for record in logged(app, process, "request"))


def test_web_metrics_add_up_every_gunicorn_worker(start_flixtube: StartFlixTube):
    app = start_flixtube("http", services=("video-streaming",), env={"WEB_CONCURRENCY": "2"})
    url = app.url("video-streaming", "/videos")
    with ThreadPoolExecutor(8) as pool:  # fresh connections, so both workers take some
        statuses = list(pool.map(lambda _: requests.get(url, timeout=10).status_code, range(60)))
    assert statuses == [200] * 60
    totals = {
        sample(
            scrape(app.url("video-streaming", "/metrics")),
            "flixtube_http_requests_total",
            route="/videos",
            method="GET",
            status="200",
        )
        for _ in range(10)  # each scrape is answered by either worker: each must show the sum
    }
    assert totals == {60.0}


def test_a_consumer_counts_each_event_it_handles(
    start_flixtube: StartFlixTube, mongo_server: MongoServer
) -> None:
    app = start_flixtube("fanout", services=("history",), db_url=mongo_server.url)
    labels = {"subscriber": "history"}

    def metric(name: str, **extra: str) -> float:
        return sample(worker_metrics(app, "history"), name, **labels, **extra)

    body = view_body("twice.mp4")
    publish(app.rabbit_url, [body, body, b"not json"], "viewed", "", message_ids=["same", "same", None])
    wait_until(lambda: metric("flixtube_views_consumed_total") >= 3, timeout=60, what="three messages")
    wait_until(lambda: metric("flixtube_views_dead_lettered_total", reason="invalid"), what="the dead letter")
    assert metric("flixtube_views_consumed_total") == 3
    assert metric("flixtube_views_dead_lettered_total", reason="invalid") == 1
    assert metric("flixtube_views_stored_total") == 1
    assert metric("flixtube_views_duplicates_total") == 1
    assert metric("flixtube_views_dead_lettered_total", reason="handler_failed") == 0
    assert metric("flixtube_store_outages_total") == 0
    lag = {"queue": "history.viewed"}
    assert metric("flixtube_consumer_lag_messages", **lag) == 0

    mongo_server.kill()
    publish(app.rabbit_url, [view_body(f"while-down-{i}.mp4") for i in range(5)], "viewed", "")
    wait_until(lambda: metric("flixtube_store_outages_total") == 1, timeout=60, what="the outage")
    assert metric("flixtube_consumer_paused") == 1
    wait_until(lambda: metric("flixtube_consumer_lag_messages", **lag) == 5, timeout=60, what="the lag")

    mongo_server.start()
    wait_until(lambda: metric("flixtube_views_stored_total") == 6, timeout=60, what="the views after it")
    assert metric("flixtube_consumer_paused") == 0
    wait_until(lambda: metric("flixtube_consumer_lag_messages", **lag) == 0, timeout=60, what="no lag")


@pytest.mark.parametrize("service", ["video-streaming", "history", "recommendations"])
def test_every_web_process_answers_metrics(start_flixtube: StartFlixTube, service: str):
    app = start_flixtube("http", services=(service,))
    requests.get(app.url(service, "/healthz"), timeout=10)
    samples = scrape(app.url(service, "/metrics"))
    assert sample(samples, "flixtube_http_requests_total", route="/healthz", method="GET", status="200") >= 1
