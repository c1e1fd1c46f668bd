"""Each event moves exactly its metrics: requests, playback starts, bytes, the outbox, history's POSTs.

The consumer's metrics are checked against a real broker and worker in
tests/integration/test_observability.py. Values are read from prometheus_client's registry as deltas
(it is one per process and other tests move it too).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import history
from flixtube_common.backoff import Backoff
from flixtube_common.outbox import Outbox
from flixtube_common.spool import ROW_OVERHEAD, Spool
from flixtube_common.views import View
from tests.fakes import MemoryStore, ScriptedTransport
from tests.harness import wait_until
from video_streaming import create_app

FAST = Backoff(first=0.001, cap=0.01)
Series = tuple[str, dict[str, str]]


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@contextmanager
def changes(*series: Series) -> Iterator[Callable[[], list[float]]]:
    """How much each series moved since the block began (call the yielded function to read)."""
    before = [value(name, **labels) for name, labels in series]
    yield lambda: [
        value(name, **labels) - start for (name, labels), start in zip(series, before, strict=True)
    ]


def requests(route: str, status: str, method: str = "GET") -> Series:
    return "flixtube_http_requests_total", {"route": route, "method": method, "status": status}


PLAYBACKS: Series = ("flixtube_playback_starts_total", {})
BYTES: Series = ("flixtube_streamed_bytes_total", {})
PUBLISHED: Series = ("flixtube_views_published_total", {})
CONFIRMED: Series = ("flixtube_views_confirmed_total", {})
RETRIED: Series = ("flixtube_views_retried_total", {})
DEPTH: Series = ("flixtube_outbox_views", {})


def dropped(reason: str) -> Series:
    return "flixtube_views_dropped_total", {"reason": reason}


def outbox_in(folder: Path, transport: ScriptedTransport, max_bytes: int = 1024 * 1024) -> Outbox:
    return Outbox(transport, Spool(folder, max_bytes), backoff=FAST, idle_tick=0.01)


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "b.mp4").write_bytes(bytes(range(256)) * 4)
    env = {"VIDEOS_DIR": str(videos), "VIEWED_MESSAGING": "http", "OUTBOX_DIR": str(tmp_path / "outbox")}
    return create_app(env, outbox=outbox_in(tmp_path / "outbox", ScriptedTransport())).test_client()


def test_requests_are_counted_by_route_method_and_status_with_their_latency(client: FlaskClient) -> None:
    latency = ("flixtube_http_request_duration_seconds_count", {"route": "/video", "method": "GET"})
    with changes(
        requests("/video", "200"), requests("/video", "404"), requests("<unmatched>", "404"), latency
    ) as moved:
        client.get("/video?path=b.mp4").close()
        client.get("/video?path=missing.mp4").close()
        client.get("/no/such/page/a-video-name.mp4").close()
    assert moved() == [1, 1, 1, 2]


def test_an_unusual_method_is_one_bounded_label(client: FlaskClient) -> None:
    with changes(requests("<unmatched>", "405", method="other")) as moved:  # 405: no rule matched
        assert client.open("/video", method="BREW").status_code == 405
    assert moved() == [1]


def test_a_playback_start_counts_once_and_every_body_counts_its_bytes(client: FlaskClient) -> None:
    with changes(PLAYBACKS, BYTES) as moved:
        client.get("/video?path=b.mp4").close()  # whole file: a start, 1024 bytes
    assert moved() == [1, 1024]
    with changes(PLAYBACKS, BYTES) as moved:
        client.get("/video?path=b.mp4", headers={"Range": "bytes=100-199"}).close()
    assert moved() == [0, 100]
    with changes(PLAYBACKS, BYTES) as moved:
        with client.head("/video?path=b.mp4") as head:
            etag = head.headers["ETag"]
        client.get("/video?path=b.mp4", headers={"If-None-Match": etag}).close()  # 304
        client.get("/video?path=b.mp4", headers={"Range": "bytes=5000-"}).close()  # 416
    assert moved() == [0, 0]


def test_metrics_endpoint_speaks_the_prometheus_text_format(client: FlaskClient) -> None:
    client.get("/video?path=b.mp4").close()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert families["flixtube_playback_starts"].type == "counter"
    assert families["flixtube_http_request_duration_seconds"].type == "histogram"
    assert families["flixtube_outbox_views"].type == "gauge"
    samples = [s for s in families["flixtube_http_requests"].samples if s.labels.get("route") == "/video"]
    assert samples and all(set(s.labels) == {"route", "method", "status"} for s in samples)
    openmetrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert openmetrics.content_type.startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")


def test_published_views_are_confirmed_and_leave_the_outbox_depth(tmp_path: Path) -> None:
    transport = ScriptedTransport()
    transport.gate.clear()
    outbox = outbox_in(tmp_path, transport)
    outbox.start()
    with changes(PUBLISHED, CONFIRMED, RETRIED) as moved:
        for name in "abc":
            outbox.put(View(name))
        assert value(DEPTH[0]) == 3  # on disk, one of them at the transport's gate
        transport.gate.set()
        wait_until(lambda: len(transport.delivered) == 3, what="delivery")
        wait_until(lambda: value(DEPTH[0]) == 0, what="the depth to fall")
        outbox.close()
    assert moved() == [3, 3, 0]


def test_a_failed_send_is_counted_as_retried_then_confirmed(tmp_path: Path) -> None:
    transport = ScriptedTransport(failures=2)
    outbox = outbox_in(tmp_path, transport)
    outbox.start()
    with changes(PUBLISHED, CONFIRMED, RETRIED) as moved:
        outbox.put(View("flaky"))
        wait_until(lambda: transport.delivered == ["flaky"], what="delivery")
        outbox.close()
    assert moved() == [3, 1, 2]


def test_a_full_outbox_and_a_rejecting_receiver_each_drop_with_their_reason(tmp_path: Path) -> None:
    stuck = ScriptedTransport()
    stuck.gate.clear()
    outbox = outbox_in(tmp_path / "full", stuck, max_bytes=len(View("a").to_bytes()) + ROW_OVERHEAD)
    outbox.start()
    with changes(dropped("outbox_full"), dropped("rejected")) as moved:
        assert outbox.put(View("a"))
        assert not outbox.put(View("b"))
        stuck.gate.set()
        outbox.close()
    assert moved() == [1, 0]

    rejecting = ScriptedTransport(reject={"bad"})
    outbox = outbox_in(tmp_path / "rejecting", rejecting)
    outbox.start()
    with changes(dropped("outbox_full"), dropped("rejected"), CONFIRMED) as moved:
        outbox.put(View("bad"))
        wait_until(lambda: outbox.dropped == 1, what="the rejection")
        outbox.close()
    assert moved() == [0, 1, 0]


def test_history_counts_what_each_post_did() -> None:
    labels = {"subscriber": "history"}
    series = [(f"flixtube_views_{kind}_total", labels) for kind in ("consumed", "stored", "duplicates")] + [
        ("flixtube_store_outages_total", labels)
    ]
    store = MemoryStore()
    client = history.create_app({"DBHOST": "mongodb://127.0.0.1:1", "VIEWED_MESSAGING": "http"}, views=store)  # type: ignore[arg-type]
    client = client.test_client()
    with changes(*series) as moved:
        client.post("/viewed", json={"videoPath": "a.mp4", "viewId": "once"})
        client.post("/viewed", json={"videoPath": "a.mp4", "viewId": "once"})
        client.post("/viewed", json={"videoPath": ""})
        store.down = True
        assert client.post("/viewed", json={"videoPath": "a.mp4"}).status_code == 503
    assert moved() == [4, 1, 1, 1]
