"""A missing or invalid setting stops each real process at start: non-zero exit, one line naming it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devtools import procfile

GOOD = {
    "VIEWED_MESSAGING": "fanout",
    "RABBIT": "amqp://guest:guest@127.0.0.1:5672",
    "DBHOST": "mongodb://127.0.0.1:1",
}

CASES = [
    ("history", "web", {"DBHOST": ""}, "DBHOST"),
    ("history", "worker", {"DBHOST": ""}, "DBHOST"),
    ("history", "web", {"DBHOST": "localhost:27017"}, "DBHOST"),
    ("recommendations", "web", {"VIEWED_MESSAGING": "bogus"}, "VIEWED_MESSAGING"),
    ("recommendations", "worker", {"RABBIT": ""}, "RABBIT"),
    ("video-streaming", "web", {"PORT": "abc"}, "PORT"),
    ("video-streaming", "web", {"PORT": "70000"}, "PORT"),
    ("video-streaming", "web", {"RABBIT": "http://nope"}, "RABBIT"),
    ("video-streaming", "web", {"VIDEOS_DIR": "/does/not/exist"}, "VIDEOS_DIR"),
    ("video-streaming", "web", {"VIEWED_MESSAGING": "http", "HISTORY_URL": "history"}, "HISTORY_URL"),
    ("video-streaming", "web", {"APP_PORT": "0"}, "APP_PORT"),
    ("video-streaming", "app", {"APP_PORT": "x"}, "APP_PORT"),
    ("video-streaming", "app", {"VIDEOS_DIR": "/does/not/exist"}, "VIDEOS_DIR"),
    ("history", "worker", {"METRICS_PORT": "nine"}, "METRICS_PORT"),
    ("video-streaming", "app", {"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER"),
    (
        "history",
        "worker",
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "smoke"},
        "PROTOCOL",
    ),
    ("video-streaming", "web", {"OUTBOX_DIR": "/proc/no-outbox-here"}, "OUTBOX_DIR"),
    ("video-streaming", "web", {"OUTBOX_MAX_MIB": "0"}, "OUTBOX_MAX_MIB"),
]


@pytest.mark.parametrize(("service", "kind", "override", "name"), CASES)
def test_a_bad_setting_stops_the_process_with_one_line(
    tmp_path: Path, service: str, kind: str, override: dict[str, str], name: str
) -> None:
    env = {**GOOD, "PORT": str(procfile.free_port()), **override}
    log = tmp_path / "out.log"
    with log.open("wb") as output:
        process = procfile.start(service, kind, env, output)
        code = process.wait(timeout=60)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert code != 0
    assert [line for line in lines if name in line], lines
    assert not any("Traceback" in line for line in lines), lines
    assert len([line for line in lines if "Error" in line]) == 1, lines


def test_secrets_in_urls_never_reach_the_log(tmp_path: Path) -> None:
    env = {**GOOD, "PORT": str(procfile.free_port()), "RABBIT": "http://guest:s3cret@nope"}
    log = tmp_path / "out.log"
    with log.open("wb") as output:
        assert procfile.start("video-streaming", "web", env, output).wait(timeout=60) != 0
    assert "s3cret" not in log.read_text()
    assert "RABBIT" in log.read_text()


def test_a_consumer_with_nothing_to_do_exits_zero(tmp_path: Path) -> None:
    env = {**GOOD, "VIEWED_MESSAGING": "http"}
    for service in ("history", "recommendations"):
        assert procfile.start(service, "worker", env, subprocess.DEVNULL).wait(timeout=60) == 0
