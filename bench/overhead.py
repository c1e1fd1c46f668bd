"""What metrics and tracing cost: the code before them, and with tracing off, on and sampled, side by side.

    .venv/bin/python -m bench.overhead --baseline REV [--rounds 3] [--seconds 5] [--views 3000]

Four variants run at once, each started from the same Procfile line:
  before   the services as of git revision REV (extracted with `git archive` into the work folder)
  off      this checkout, metrics on, tracing off (no OTEL_* variables: the default)
  on       this checkout with OTEL_TRACES_EXPORTER=otlp to a local OTLP/HTTP sink that accepts and
           drops every batch (the exporter's encoding and sending is part of the cost; no collector's);
           every trace is sampled (the SDK's default)
  sampled  the same with OTEL_TRACES_SAMPLER=parentbased_traceidratio, OTEL_TRACES_SAMPLER_ARG=0.1: one
           playback in ten is traced, end to end
Scenarios, in alternating rounds (the variants' order rotates every round):
  range    video-streaming: 1 MiB ranges at random offsets (metrics and a span per request, no view)
  start    video-streaming: 64 KiB ranges from byte 0, each a playback start that publishes a view
           (fanout, real broker, a durable queue bound): the run lasts until the views have left
  consume  history's worker: N views published into its queue; views/s until all are stored, and the
           worker's CPU per view
Costs are 1 - variant ÷ before for throughput, and 1 - before's CPU ÷ variant's CPU per request (steadier
on a shared machine). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pika
import pymongo

from bench import harness
from bench.stream import ViewCounter, bind_view_queue
from devtools import procfile
from flixtube_common.views import View

VARIANTS = ("before", "off", "on", "sampled")
SAMPLED = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
SCENARIOS = ("range", "start", "consume")
QUEUE = "history.viewed"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.argument_parser(__doc__)
    parser.add_argument("--baseline", required=True, help="git revision of the code before instrumentation")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per scenario (default 3)")
    harness.add_load_options(parser, 5, "seconds per variant per round")
    parser.add_argument("--views", type=int, default=3000, help="views per consume round (default 3000)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios to run")
    args = parser.parse_args(argv)
    args.only = [name for name in SCENARIOS if name in args.only.split(",")]
    return args


class _Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver that accepts every export and keeps nothing."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.contextmanager
def otlp_sink() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def baseline_tree(revision: str, into: Path) -> Path:
    """The shared package and the services as of `revision`."""
    archive = subprocess.run(
        ["git", "-C", str(procfile.ROOT), "archive", revision, "libs", "services"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


@contextlib.contextmanager
def variant_service(
    root: Path, service: str, kind: str, env: dict[str, str], *, logs: Path, label: str
) -> Iterator[harness.Service]:
    """One Procfile line run from `root`'s service folder, with `root`'s shared package."""
    extra = {**env, "PYTHONPATH": str(root / "libs" / "flixtube_common" / "src")}
    port = procfile.free_port() if kind == "web" else None
    if port is not None:
        extra["PORT"] = str(port)
    log = logs / f"{label}.{service}.{kind}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            procfile.read_procfile(service)[kind],
            shell=True,
            cwd=root / "services" / service,
            env=procfile.process_env(extra),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = harness.Service(service, kind, process, log, port)
    try:
        if port is not None:
            procfile.wait_for_http(f"{started.url}/readyz", timeout=60)
        yield started
    finally:
        procfile.stop(process)


def tracing_env(variant: str, sink: str) -> dict[str, str]:
    if variant not in ("on", "sampled"):
        return {}
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        **(SAMPLED if variant == "sampled" else {}),
    }


def consume_round(
    rabbit: str, db: pymongo.MongoClient[dict[str, Any]], dbname: str, worker: Any, n: int
) -> tuple[float, float]:
    """Publish n views into the worker's queue; (views/s until all stored, worker CPU ms per view)."""
    collection = db[dbname]["videos"]
    before_count = collection.estimated_document_count()
    cpu_before = harness.cpu_seconds(worker.processes())
    views = [View(video_path=f"bench/{i % 50}.mp4") for i in range(n)]
    connection = pika.BlockingConnection(pika.URLParameters(rabbit))
    started = time.perf_counter()
    try:
        channel = connection.channel()
        for view in views:
            channel.basic_publish(
                "viewed",
                "",
                view.to_bytes(),
                pika.BasicProperties(
                    delivery_mode=2, message_id=view.view_id, content_type="application/json"
                ),
            )
    finally:
        connection.close()
    deadline = time.monotonic() + 120
    while collection.estimated_document_count() < before_count + n and time.monotonic() < deadline:
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    cpu = harness.cpu_seconds(worker.processes()) - cpu_before
    return n / seconds, cpu * 1000 / n


def run(args: argparse.Namespace) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(harness.workdir(args.keep))
        sink = stack.enter_context(otlp_sink())
        roots = {variant: procfile.ROOT for variant in VARIANTS}
        roots["before"] = baseline_tree(args.baseline, tmp / "before")
        video = harness.make_video(tmp / "videos", mib=args.mib)
        db_url = stack.enter_context(harness.mongo_server(tmp / "mongo"))
        db: pymongo.MongoClient[dict[str, Any]] = stack.enter_context(pymongo.MongoClient(db_url))
        webs, workers, rabbits = {}, {}, {}
        for variant in VARIANTS:
            rabbit = stack.enter_context(
                harness.rabbit_vhost(f"flixtube-overhead-{variant}-{time.time_ns()}")
            )
            rabbits[variant] = rabbit
            bind_view_queue(rabbit)
            env = {
                "VIEWED_MESSAGING": "fanout",
                "RABBIT": rabbit,
                "VIDEOS_DIR": str(video.parent),
                "DBHOST": db_url,
                "DBNAME": f"overhead_{variant}",
                **tracing_env(variant, sink),
            }
            webs[variant] = stack.enter_context(
                variant_service(roots[variant], "video-streaming", "web", env, logs=tmp, label=variant)
            )
            if "consume" in args.only:
                workers[variant] = stack.enter_context(
                    variant_service(roots[variant], "history", "worker", env, logs=tmp, label=variant)
                )
        counters = {variant: ViewCounter(rabbits[variant]) for variant in VARIANTS}
        size = video.stat().st_size
        series: dict[str, dict[str, harness.Series]] = {}
        consumed: dict[str, dict[str, list[float]]] = {v: {"rate": [], "cpu_ms": []} for v in VARIANTS}

        def load(variant: str, mode: str, span: int, seconds: float) -> harness.WrkRun:
            processes = [p for _, p in harness.service_processes([webs[variant]])]
            before = harness.cpu_seconds(processes)
            done = harness.wrk(
                f"{webs[variant].url}/video?path={video.name}",
                mode,
                seconds=seconds,
                connections=args.connections,
                threads=args.threads,
                file_size=size,
                span=span,
            )
            if mode == "start":
                _, done.drain_seconds = counters[variant].settle()
            done.cpu_seconds = harness.cpu_seconds(processes) - before
            return done

        for variant in VARIANTS:  # warm up: page cache, connections, imports
            load(variant, "range", harness.MIB, 1)
        for scenario in args.only:
            series[scenario] = {variant: harness.Series() for variant in VARIANTS}
            for round_ in range(args.rounds):
                order = VARIANTS[round_ % len(VARIANTS) :] + VARIANTS[: round_ % len(VARIANTS)]
                for variant in order:
                    if scenario == "consume":
                        rate, cpu_ms = consume_round(
                            rabbits[variant], db, f"overhead_{variant}", workers[variant], args.views
                        )
                        consumed[variant]["rate"].append(rate)
                        consumed[variant]["cpu_ms"].append(cpu_ms)
                    else:
                        span = harness.MIB if scenario == "range" else 64 * 1024
                        series[scenario][variant].add(load(variant, scenario, span, args.seconds))
        for counter in counters.values():
            counter.close()
    return {"series": series, "consumed": consumed}


def _cost(variant: float, before: float) -> float:
    return round(1 - variant / before, 3) if before else float("nan")


def report(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, Any] = {"bench": "overhead", **harness.stamp(), "baseline": args.baseline}
    rows = []
    for scenario, by_variant in result["series"].items():
        if scenario == "consume":
            continue
        base = by_variant["before"]
        for variant, runs in by_variant.items():
            rps = runs.sustained_rps if scenario == "start" else runs.rps
            base_rps = base.sustained_rps if scenario == "start" else base.rps
            per_round = [r.requests / (r.seconds + r.drain_seconds) for r in runs.runs]
            cost = _cost(rps, base_rps)
            cpu_cost = round(1 - base.cpu_ms_per_request / runs.cpu_ms_per_request, 3)
            rows.append([scenario, variant, rps, runs.cpu_ms_per_request, cost, cpu_cost, runs.errors])
            figures[f"{scenario}_{variant}"] = {
                "rps": round(rps, 1),
                "rps_per_round": [round(r, 1) for r in per_round],
                "cpu_ms_per_req": round(runs.cpu_ms_per_request, 3),
                "cost": cost,
                "cost_cpu": cpu_cost,
            }
    consumed = result["consumed"]
    if consumed["before"]["rate"]:
        base_rate = statistics.median(consumed["before"]["rate"])
        base_cpu = statistics.median(consumed["before"]["cpu_ms"])
        for variant in VARIANTS:
            rate = statistics.median(consumed[variant]["rate"])
            cpu = statistics.median(consumed[variant]["cpu_ms"])
            rows.append(
                ["consume", variant, rate, cpu, _cost(rate, base_rate), round(1 - base_cpu / cpu, 3), 0]
            )
            figures[f"consume_{variant}"] = {
                "views_per_s": round(rate, 1),
                "views_per_s_per_round": [round(r, 1) for r in consumed[variant]["rate"]],
                "cpu_ms_per_view": round(cpu, 3),
                "cost": _cost(rate, base_rate),
                "cost_cpu": round(1 - base_cpu / cpu, 3),
            }
    headers = ["scenario", "variant", "req or views /s", "CPU ms each", "cost (rate)", "cost (CPU)", "errors"]
    print(
        f"\n{args.rounds} rounds x {args.seconds:g} s, baseline {args.baseline}; "
        "targets: off <= 5 %, on <= 15 %"
    )
    print(harness.table(headers, rows))
    return figures


def main(argv: list[str] | None = None) -> int:
    return harness.run_main(argv, parse, run, report)


if __name__ == "__main__":
    raise SystemExit(main())
