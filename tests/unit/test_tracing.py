"""Tracing's switches, and what it does with sampled and unsampled contexts.

A tracer provider is installed once per process, so the cases that turn tracing on run in a fresh
interpreter with the console exporter and read its span lines.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.procfile import SHARED_SRC
from flixtube_common import config, tracing
from flixtube_common.spool import Spool
from flixtube_common.views import View

SAMPLED = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
UNSAMPLED = "00-" + "c" * 32 + "-" + "d" * 16 + "-00"

TRACED = f"""
import json
from flixtube_common import tracing
from flixtube_common.views import View
assert tracing.configure("unit")
views = [
    View("s.mp4", trace={{"traceparent": "{SAMPLED}"}}),
    View("u.mp4", trace={{"traceparent": "{UNSAMPLED}"}}),
]
with tracing.sending(views) as sent:
    pass
with tracing.processing([(view.trace, view.view_id) for view in sent], "q.viewed", "videos"):
    pass
tracing.flush()
print(json.dumps({{"sent": [view.trace["traceparent"] for view in sent]}}))
"""


@pytest.mark.parametrize(
    "env",
    [{}, {"OTEL_TRACES_EXPORTER": "none"}, {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}],
)
def test_tracing_stays_off_unless_an_exporter_is_named(env: dict[str, str]) -> None:
    assert tracing.configure("unit", env) is False
    assert tracing.carrier() == {} and tracing.current_ids() == {}


def test_an_unknown_exporter_or_protocol_is_a_setting_error() -> None:
    with pytest.raises(config.ConfigError, match="OTEL_TRACES_EXPORTER"):
        tracing.configure("unit", {"OTEL_TRACES_EXPORTER": "jaeger"})
    with pytest.raises(config.ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        tracing.configure("unit", {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"})
    assert not tracing.ENABLED


def test_the_trace_id_of_a_message_is_read_from_its_traceparent() -> None:
    assert tracing.logged_trace({"traceparent": SAMPLED}) == {"traceId": "a" * 32}
    assert tracing.logged_trace({"traceparent": "garbage"}) == {}
    assert tracing.logged_trace(None) == {}
    assert tracing.sampled_out({"traceparent": UNSAMPLED})
    assert not tracing.sampled_out({"traceparent": SAMPLED})
    assert not tracing.sampled_out({"traceparent": SAMPLED[:-2] + "zz"}) and not tracing.sampled_out(None)


def test_a_sampled_view_gets_its_spans_and_an_unsampled_one_passes_through_untouched() -> None:
    done = subprocess.run(
        [sys.executable, "-c", TRACED],
        env={**os.environ, "PYTHONPATH": str(SHARED_SRC), "OTEL_TRACES_EXPORTER": "console"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    spans = {span["name"]: span for span in lines if "name" in span}
    (result,) = [line for line in lines if "sent" in line]
    assert set(spans) == {"send viewed", "process q.viewed", "insert videos"}
    assert {span["context"]["trace_id"] for span in spans.values()} == {"0x" + "a" * 32}
    send = spans["send viewed"]
    assert send["parent_id"] == "0x" + "b" * 16 and send["kind"] == "SpanKind.PRODUCER"
    sampled, unsampled = result["sent"]
    assert sampled == f"00-{'a' * 32}-{send['context']['span_id'][2:]}-01"  # the send span is the parent
    assert spans["process q.viewed"]["parent_id"] == send["context"]["span_id"]
    assert spans["insert videos"]["parent_id"] == spans["process q.viewed"]["context"]["span_id"]
    assert unsampled == UNSAMPLED


def test_a_view_keeps_its_trace_context_on_disk_and_through_adoption(tmp_path: Path) -> None:
    first = Spool(tmp_path, 1024 * 1024)
    assert first.append(View("traced.mp4", trace={"traceparent": SAMPLED}))
    [(_, kept)] = first.oldest(10)
    assert kept.trace == {"traceparent": SAMPLED}
    first.close()  # as if its process ended: the file, not empty, waits for another to adopt it
    # A file written before the trace column existed is adopted too, its views without a context.
    with sqlite3.connect(tmp_path / "outbox-old.sqlite3") as old:
        old.execute("CREATE TABLE views (id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL)")
        old.execute("INSERT INTO views (body) VALUES (?)", (View("old.mp4").to_bytes(),))
    (tmp_path / "outbox-old.lock").touch()
    second = Spool(tmp_path, 1024 * 1024)
    assert second.adopt_orphans() == 2
    adopted = {view.video_path: view.trace for _, view in second.oldest(10)}
    assert adopted == {"traced.mp4": {"traceparent": SAMPLED}, "old.mp4": {}}
    second.close()
