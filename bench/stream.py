"""Streaming throughput: video-streaming (started as its Procfile says) against nginx, same files, same wrk.

    .venv/bin/python -m bench.stream [--rounds 3] [--seconds 5] [--connections 16] [--mib 8]

Scenarios, each in alternating short rounds (flixtube, nginx, then nginx, flixtube, ...):
  full   whole-file GETs of a generated multi-MB video
  range  1 MiB ranges at random offsets (never from byte 0)
and, on video-streaming only, the cost of the viewed message (fanout mode, real broker, a durable queue
bound to the exchange as history's would be): `start` ranges from byte 0 (each publishes a view) against
`byte1` ranges of the same size from byte 1 (none). Resident memory of video-streaming's processes is
sampled idle and under this load. The last line printed is one JSON object of all figures.
"""

from __future__ import annotations

import argparse
import os
import time
import urllib.request
from typing import Any

import pika
from pika.exceptions import AMQPError

from bench import harness
from bench.harness import MIB, Series

SERVERS = ("flixtube", "nginx")
SCENARIOS = ("full", "range", "viewed")
PUBLISHING = ("full", "start")  # wrk modes whose requests are playback starts
VIEW_QUEUE = "history.viewed"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.argument_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per scenario (default 3)")
    harness.add_load_options(parser, 5, "seconds per server per round")
    parser.add_argument("--span", type=int, default=MIB, help="bytes per range request (default 1 MiB)")
    parser.add_argument(
        "--start-span", type=int, default=64 * 1024, help="bytes per playback-start request (default 64 KiB)"
    )
    parser.add_argument(
        "--nginx-workers",
        type=int,
        default=os.cpu_count() or 2,
        help="nginx worker processes (default: cores)",
    )
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios to run (default all: {','.join(SCENARIOS)})",
    )
    args = parser.parse_args(argv)
    args.only = [name for name in SCENARIOS if name in args.only.split(",")]
    return args


def check(url: str, size: int, reference: bytes) -> None:
    """Both servers must answer the scenarios correctly before they are timed."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200 and len(response.read()) == size, f"{url}: full GET is wrong"
    for first in (0, 1, size // 2):
        request = urllib.request.Request(url, headers={"Range": f"bytes={first}-{first + MIB - 1}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            assert response.status == 206, f"{url}: range answered {response.status}"
            assert body == reference[first : first + MIB], f"{url}: range from {first} has the wrong bytes"


def bind_view_queue(rabbit: str) -> None:
    """A durable queue on the `viewed` exchange, as history declares it: views are stored, not dropped."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbit))
    try:
        channel = connection.channel()
        channel.exchange_declare("viewed", exchange_type="fanout", durable=True)
        channel.queue_declare(VIEW_QUEUE, durable=True)
        channel.queue_bind(VIEW_QUEUE, "viewed")
    finally:
        connection.close()


class ViewCounter:
    """Counts the views in the bound queue over one connection, reconnecting if the broker restarts."""

    def __init__(self, rabbit: str) -> None:
        self._params = pika.URLParameters(rabbit)
        self._connection: pika.BlockingConnection | None = None

    def count(self) -> int:
        for attempt in range(10):  # the shared broker may be restarting (other test suites use it)
            try:
                if self._connection is None or not self._connection.is_open:
                    self._connection = pika.BlockingConnection(self._params)
                channel = self._connection.channel()
                try:
                    return channel.queue_declare(VIEW_QUEUE, passive=True).method.message_count
                finally:
                    channel.close()
            except AMQPError:
                self._connection = None
                time.sleep(1 + attempt)
        return -1

    def settle(self, step: float = 0.1, timeout: float = 60) -> tuple[int, float]:
        """Wait until the outboxes have drained (the count stops growing): (count, seconds waited)."""
        started = time.monotonic()
        last = self.count()
        while time.monotonic() - started < timeout:
            time.sleep(step)
            count = self.count()
            if count == last:
                return count, time.monotonic() - started - step
            last = count
        return last, time.monotonic() - started

    def close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            self._connection.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    with harness.workdir(args.keep) as tmp, harness.rabbit_vhost() as rabbit:
        if args.keep:
            print(f"work folder: {tmp}")
        video = harness.make_video(tmp / "videos", mib=args.mib)
        size = video.stat().st_size
        reference = video.read_bytes()
        bind_view_queue(rabbit)
        views = ViewCounter(rabbit)
        env = {
            "VIEWED_MESSAGING": "fanout",
            "RABBIT": rabbit,
            "VIDEOS_DIR": str(video.parent),
            "OUTBOX_DIR": str(tmp / "outbox"),
        }
        with (
            harness.service("video-streaming", "web", env, tmp) as web,
            harness.nginx(video.parent, tmp, args.nginx_workers) as nginx,
        ):
            urls = {"flixtube": f"{web.url}/video?path={video.name}", "nginx": f"{nginx.url}/{video.name}"}
            for url in urls.values():
                check(url, size, reference)
            checked_views = 2  # check() asked video-streaming for one 200 and one 206 from byte 0

            processes = harness.service_processes([web])
            time.sleep(1.0)
            idle = {label: harness.rss_mib(p) for label, p in processes}

            server_processes = {"flixtube": [p for _, p in processes], "nginx": nginx.processes()}

            broker = harness.broker_processes()

            def load(server: str, mode: str, span: int, seconds: float) -> harness.WrkRun:
                before = harness.cpu_seconds(server_processes[server])
                broker_before = harness.cpu_seconds(broker)
                run = harness.wrk(
                    urls[server],
                    mode,
                    seconds=seconds,
                    connections=args.connections,
                    threads=args.threads,
                    file_size=size,
                    span=span,
                )
                if server == "flixtube" and mode in PUBLISHING:
                    # Views still in the outboxes are part of this run's work: wait, and count it.
                    _, run.drain_seconds = views.settle()
                run.cpu_seconds = harness.cpu_seconds(server_processes[server]) - before
                run.broker_cpu_seconds = harness.cpu_seconds(broker) - broker_before
                return run

            series: dict[str, dict[str, Series]] = {}
            with harness.RssSampler(processes) as sampler:
                for server in SERVERS:  # warm both up: page cache, connections, imports
                    load(server, "range", args.span, 1)
                for scenario in [s for s in args.only if s != "viewed"]:
                    series[scenario] = {server: Series() for server in SERVERS}
                    for round_ in range(args.rounds):
                        order = SERVERS if round_ % 2 == 0 else SERVERS[::-1]
                        for server in order:
                            series[scenario][server].add(load(server, scenario, args.span, args.seconds))
                series["viewed"] = {mode: Series() for mode in ("start", "byte1")}
                for round_ in range(args.rounds if "viewed" in args.only else 0):
                    order = ("start", "byte1") if round_ % 2 == 0 else ("byte1", "start")
                    for mode in order:
                        series["viewed"][mode].add(load("flixtube", mode, args.start_span, args.seconds))
            queued, _ = views.settle(step=1.0)
            views.close()
        dropped = sum(
            line.count('"view refused') + line.count('"view rejected')
            for line in web.log.read_text().splitlines()
        )
    starts = sum(series[s]["flixtube"].requests for s in ("full",) if s in series)
    starts += series["viewed"]["start"].requests
    expected = starts + checked_views
    return {
        "video_bytes": size,
        "series": series,
        "idle_rss": idle,
        "peak_rss": sampler.peak,
        "views": {"queued": queued, "starts_counted": expected, "dropped_logged": dropped},
    }


def report(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    series: dict[str, dict[str, Series]] = result["series"]
    rows = []
    figures: dict[str, Any] = {"bench": "stream", **harness.stamp(), "command": command(args)}
    for scenario in [s for s in args.only if s != "viewed"]:
        ours, ref = series[scenario]["flixtube"], series[scenario]["nginx"]
        for name, s in (("flixtube", ours), ("nginx", ref)):
            rows.append(
                [f"{scenario} {name}", s.rps, s.mbps, s.p50_ms, s.p99_ms, s.cpu_ms_per_request, s.errors]
            )
        ratio = {
            "rps": ours.rps / ref.rps,
            "mbps": ours.mbps / ref.mbps,
            "p50": ours.p50_ms / ref.p50_ms,
            "p99": ours.p99_ms / ref.p99_ms,
            "cpu_per_req": ours.cpu_ms_per_request / ref.cpu_ms_per_request,
        }
        rows.append([f"{scenario} ratio", *ratio.values(), ""])
        figures[scenario] = {
            "flixtube": ours.figures(),
            "nginx": ref.figures(),
            "ratio": {k: round(v, 3) for k, v in ratio.items()},
            "ratio_rps_per_round": [
                round(a.rps / b.rps, 3) for a, b in zip(ours.runs, ref.runs, strict=True)
            ],
        }
    print(f"\nvideo: {result['video_bytes'] / MIB:.1f} MiB; {args.connections} connections; "
          f"{args.rounds} rounds x {args.seconds:g} s per server per scenario")  # fmt: skip
    if "viewed" in args.only:
        figures["viewed"] = viewed_figures(result, rows)
    print(harness.table(["scenario", "req/s", "MB/s", "p50 ms", "p99 ms", "CPU ms/req", "errors"], rows))
    if "viewed" in args.only:
        views = figures["viewed"]
        print(
            f"\nviewed publish cost: {views['publish_cost']:.1%} of playback-start throughput (target <= 15%)"
        )
        print(
            f"  ({views['publish_cost_while_serving']:.1%} while wrk ran; the outboxes then took "
            f"{views['start']['drain_s']:.2f} s in all to send what was left)"
        )
        print(
            f"viewed publish CPU: {views['publish_cpu_ms']:.3f} ms per playback start in video-streaming, "
            f"{views['broker_cpu_ms']:.3f} ms in the broker (on the same cores here; "
            "other users of the broker add noise)"
        )
        print(
            f"  as a share of playback-start throughput where CPU limits it: {views['publish_cost_cpu']:.1%} "
            f"(video-streaming alone), {views['publish_cost_cpu_with_broker']:.1%} (with the broker's CPU)"
        )
        print(
            f"views in the broker: {views['queued']} for about {views['starts_counted']} playback starts "
            "(wrk does not count requests in flight at its end); "
            f"refused or dropped by the outbox: {views['dropped_logged']}"
        )
    memory_rows = [[label, result["idle_rss"][label], peak] for label, peak in result["peak_rss"].items()]
    print("\n" + harness.table(["video-streaming process", "idle RSS MiB", "peak RSS MiB"], memory_rows))
    figures["rss_mib"] = {
        label: {"idle": round(result["idle_rss"][label], 1), "peak": round(peak, 1)}
        for label, peak in result["peak_rss"].items()
    }
    return figures


def viewed_figures(result: dict[str, Any], rows: list[list[Any]]) -> dict[str, Any]:
    start, byte1 = result["series"]["viewed"]["start"], result["series"]["viewed"]["byte1"]
    for name, s in (("start (publishes)", start), ("byte1 (no view)", byte1)):
        rows.append([f"viewed {name}", s.rps, s.mbps, s.p50_ms, s.p99_ms, s.cpu_ms_per_request, s.errors])
    return {
        "start": start.figures(),
        "byte1": byte1.figures(),
        # Sustained: a run of playback starts ends when its views have left the outboxes.
        "publish_cost": round(1 - start.sustained_rps / byte1.rps, 3),
        "publish_cost_while_serving": round(1 - start.rps / byte1.rps, 3),
        "publish_cpu_ms": round(start.cpu_ms_per_request - byte1.cpu_ms_per_request, 3),
        "broker_cpu_ms": round(start.broker_cpu_ms_per_request - byte1.broker_cpu_ms_per_request, 3),
        # If CPU is what limits (it is, on 2 cores), throughput goes as 1 / CPU per request.
        "publish_cost_cpu": round(1 - byte1.cpu_ms_per_request / start.cpu_ms_per_request, 3),
        "publish_cost_cpu_with_broker": round(
            1
            - (byte1.cpu_ms_per_request + byte1.broker_cpu_ms_per_request)
            / (start.cpu_ms_per_request + start.broker_cpu_ms_per_request),
            3,
        ),
        "publish_cost_per_round": [
            round(1 - a.requests / (a.seconds + a.drain_seconds) / b.rps, 3)
            for a, b in zip(start.runs, byte1.runs, strict=True)
        ],
        **result["views"],
    }


def command(args: argparse.Namespace) -> str:
    return (
        f"python -m bench.stream --rounds {args.rounds} --seconds {args.seconds:g} "
        f"--connections {args.connections} --mib {args.mib}"
        + ("" if len(args.only) == len(SCENARIOS) else f" --only {','.join(args.only)}")
    )


def main(argv: list[str] | None = None) -> int:
    return harness.run_main(argv, parse, run, report)


if __name__ == "__main__":
    raise SystemExit(main())
