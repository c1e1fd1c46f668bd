"""Resident memory of every service process, idle and under stream load, the whole app running.

    .venv/bin/python -m bench.memory [--seconds 10] [--connections 16]

Starts nx-27017, a private broker vhost and every Procfile line of video-streaming, history and
recommendations in fanout mode, samples each process's RSS (psutil) while idle, then while wrk drives
video-streaming with playback starts (each publishes a view that both subscribers store), 1 MiB random
ranges and whole-file GETs in turn. Target: at most 100 MiB per process. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Any

from bench import harness
from bench.harness import MIB
from devtools.procfile import SERVICES, read_procfile

TARGET_MIB = 100.0
LOADS = (("start", 64 * 1024), ("range", MIB), ("full", 0))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.argument_parser(__doc__)
    harness.add_load_options(parser, 10, "seconds per kind of load")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    with (
        harness.workdir(args.keep) as tmp,
        harness.rabbit_vhost() as rabbit,
        harness.mongo_server(tmp / "mongo") as db,
        contextlib.ExitStack() as stack,
    ):
        video = harness.make_video(tmp / "videos", mib=args.mib)
        env = {
            "VIEWED_MESSAGING": "fanout",
            "RABBIT": rabbit,
            "DBHOST": db,
            "VIDEOS_DIR": str(video.parent),
            "OUTBOX_DIR": str(tmp / "outbox"),
        }
        services = [
            stack.enter_context(harness.service(name, kind, env, tmp, ready_path="/healthz"))
            for name in SERVICES
            for kind in read_procfile(name)
        ]
        time.sleep(3.0)  # workers connect, consumers declare their queues, then all is quiet
        processes = harness.service_processes(services)
        idle = {label: harness.rss_mib(p) for label, p in processes}
        web = next(s for s in services if s.name == "video-streaming" and s.kind == "web")
        url = f"{web.url}/video?path={video.name}"
        runs = {}
        with harness.RssSampler(processes) as sampler:
            for mode, span in LOADS:
                runs[mode] = harness.wrk(
                    url,
                    mode,
                    seconds=args.seconds,
                    connections=args.connections,
                    threads=args.threads,
                    file_size=video.stat().st_size,
                    span=span,
                )
            time.sleep(2.0)  # the subscribers work through the views a little longer
    return {"idle": idle, "peak": sampler.peak, "runs": runs}


def report(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    rows = [[label, result["idle"][label], peak] for label, peak in result["peak"].items()]
    print(
        f"\nload: {', '.join(m for m, _ in LOADS)}, {args.seconds:g} s each, {args.connections} connections"
    )
    print(harness.table(["process", "idle RSS MiB", "peak RSS MiB"], rows))
    worst = max(result["peak"].values())
    print(f"\nlargest process: {worst:.1f} MiB (target <= {TARGET_MIB:.0f} MiB per process)")
    loads = [[mode, run.rps, run.mbps, run.errors] for mode, run in result["runs"].items()]
    print(harness.table(["load on video-streaming", "req/s", "MB/s", "errors"], loads))
    return {
        "bench": "memory",
        **harness.stamp(),
        "command": f"python -m bench.memory --seconds {args.seconds:g} --connections {args.connections}",
        "rss_mib": {
            label: {"idle": round(result["idle"][label], 1), "peak": round(peak, 1)}
            for label, peak in result["peak"].items()
        },
        "max_peak_mib": round(worst, 1),
        "target_met": worst <= TARGET_MIB,
        "loads": {
            mode: {"rps": round(run.rps, 1), "errors": run.errors} for mode, run in result["runs"].items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    return harness.run_main(argv, parse, run, report)


if __name__ == "__main__":
    raise SystemExit(main())
