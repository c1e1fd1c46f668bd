"""Many slow viewers at once: video-streaming (all its Procfile lines) against nginx, same file, same load.

    .venv/bin/python -m bench.viewers [--viewers 1000] [--rate 256] [--watch 30] [--arrival 10]

Each viewer does what a browser's player does: it opens a connection, asks `GET /video?path=NAME` (nginx:
`GET /NAME`) with `Range: bytes=0-`, and reads the answer at RATE KiB/s for WATCH seconds; the viewers
arrive evenly over ARRIVAL seconds. Halfway through its watch, every viewer seeks: it drops the
connection and opens a new one with a Range from the middle of the file. Meanwhile `/healthz` is asked
on a fresh connection every PROBE seconds (timeout 2 s, as the contract allows).

The viewers are slow for real: each socket's receive buffer is shrunk to about two read slices, and each
viewer reads only its allowance every TICK seconds, so a server that holds a thread per stream holds it
for the whole watch. One Python process drives the whole load (asyncio, raw non-blocking sockets, paced
`recv_into` into one scratch buffer); the loop's own lag is reported, so a saturated client shows.

video-streaming runs in fanout mode on a private vhost with a durable queue bound to `viewed` (as
history's): the views it publishes are counted against the playback starts it answered. The last line
printed is one JSON object of all figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import resource
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench import harness
from bench.harness import MIB

KIB = 1024
SERVERS = ("flixtube", "nginx")
PROBE_TIMEOUT = 2.0
HEADER_LIMIT = 16 * KIB
# Targets of issue 11, checked in the report (a benchmark, not a test).
TARGETS = {
    "first_byte_within_1s": 0.99,
    "seek_p99_ms": 1000.0,
    "healthz_p99_ms": 500.0,
    "bytes_vs_nginx": 0.9,
    "rss_mib_per_process": 100.0,
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.argument_parser(__doc__)
    options = (
        ("--viewers", int, 1000, "concurrent viewers"),
        ("--rate", float, 256, "KiB/s each viewer reads"),
        ("--watch", float, 30, "seconds each viewer watches"),
        ("--arrival", float, 10, "seconds over which the viewers arrive"),
        ("--tick", float, 0.1, "seconds between a viewer's reads"),
        ("--probe", float, 0.5, "seconds between /healthz probes"),
        ("--mib", int, 16, "size of the generated video in MiB"),
    )
    for flag, kind, default, meaning in options:
        parser.add_argument(flag, type=kind, default=default, help=f"{meaning} (default {default:g})")
    parser.add_argument(
        "--only", default=",".join(SERVERS), help=f"comma-separated servers (default {','.join(SERVERS)})"
    )
    args = parser.parse_args(argv)
    args.only = [name for name in SERVERS if name in args.only.split(",")]
    return args


# --- one viewer ---------------------------------------------------------------------------------------


@dataclass
class Answer:
    """The head of one response: status, the first byte's latency, body bytes already read with it."""

    status: int
    first_byte_s: float
    content_range: str
    body_bytes: int


class HttpError(Exception):
    """No usable answer: refused, reset, timed out, or not HTTP."""


async def ask(
    address: tuple[str, int], request: bytes, timeout: float, rcvbuf: int | None
) -> tuple[socket.socket, Answer]:
    """Connect, send, and read the response head; the socket stays open for the body."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:  # before connect: the window the server sees is fixed at the handshake
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, address)
            await loop.sock_sendall(sock, request)
            head = b""
            first_byte = None
            while b"\r\n\r\n" not in head:
                chunk = await loop.sock_recv(sock, 4 * KIB)
                if not chunk:
                    raise HttpError("closed before the response head")
                first_byte = first_byte or time.monotonic() - started
                head += chunk
                if len(head) > HEADER_LIMIT:
                    raise HttpError("response head too large")
    except (OSError, TimeoutError, HttpError) as error:
        sock.close()
        raise HttpError(str(error) or type(error).__name__) from error
    header, _, body = head.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    fields = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    fields = {name.strip().lower(): value.strip() for name, value in fields.items()}
    status = int(lines[0].split()[1])
    return sock, Answer(status, first_byte or 0.0, fields.get("content-range", ""), len(body))


def paced_reader(rate: float, tick: float, scratch: memoryview) -> Callable[[socket.socket, float], Any]:
    """A coroutine factory: read from `sock` at `rate` bytes/s until `until`; returns (bytes, reason)."""

    async def read(sock: socket.socket, until: float) -> tuple[int, str]:
        got = 0
        allowance = 0.0
        last = time.monotonic()
        cap = rate * tick * 2  # a player that fell behind catches up a little, not all at once
        while (now := time.monotonic()) < until:
            allowance = min(allowance + (now - last) * rate, cap)
            last = now
            while allowance >= 1:
                try:
                    n = sock.recv_into(scratch, min(int(allowance), len(scratch)))
                except BlockingIOError:
                    break
                except OSError:
                    return got, "reset"
                if n == 0:
                    return got, "eof"
                got += n
                allowance -= n
            await asyncio.sleep(tick)
        return got, "watched"

    return read


@dataclass
class Tally:
    """What the viewers of one server saw."""

    first_byte_s: list[float] = field(default_factory=list)
    first_byte_failed: list[str] = field(default_factory=list)
    seek_s: list[float] = field(default_factory=list)
    seek_failed: list[str] = field(default_factory=list)
    healthz_s: list[float] = field(default_factory=list)
    healthz_failed: list[str] = field(default_factory=list)
    starts_answered: int = 0  # 206 from byte 0: the playback starts the server answered
    seeks_answered: int = 0
    body_bytes: int = 0
    endings: dict[str, int] = field(default_factory=dict)
    loop_lag_s: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Load:
    address: tuple[str, int]
    path: str  # the request target of the video, without the query's Range
    size: int
    rate: float  # bytes per second per viewer
    watch: float
    tick: float
    read: Callable[[socket.socket, float], Any]

    def request(self, first: int) -> bytes:
        return (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.address[0]}:{self.address[1]}\r\n"
            f"Range: bytes={first}-\r\nUser-Agent: flixtube-bench-viewer\r\n\r\n"
        ).encode()

    @property
    def rcvbuf(self) -> int:
        return max(8 * KIB, int(self.rate * self.tick * 2))


async def viewer(load: Load, arrive: float, seek_to: int, tally: Tally) -> None:
    """One playback: a start from byte 0, half the watch, a seek, the rest of the watch."""
    await asyncio.sleep(max(0.0, arrive - time.monotonic()))
    leaves = arrive + load.watch
    try:
        sock, answer = await ask(load.address, load.request(0), leaves - time.monotonic(), load.rcvbuf)
    except HttpError as error:
        tally.first_byte_failed.append(str(error))
        return
    tally.first_byte_s.append(answer.first_byte_s)
    if answer.status != 206 or not answer.content_range.startswith("bytes 0-"):
        tally.first_byte_failed.append(f"status {answer.status}")
        sock.close()
        return
    tally.starts_answered += 1
    tally.body_bytes += answer.body_bytes
    seek_at = arrive + load.watch / 2
    with sock:
        got, _ending = await load.read(sock, seek_at)
    tally.body_bytes += got
    try:
        sock, answer = await ask(load.address, load.request(seek_to), leaves - time.monotonic(), load.rcvbuf)
    except HttpError as error:
        tally.seek_failed.append(str(error))
        return
    tally.seek_s.append(answer.first_byte_s)
    if answer.status != 206:
        tally.seek_failed.append(f"status {answer.status}")
        sock.close()
        return
    tally.seeks_answered += 1
    tally.body_bytes += answer.body_bytes
    with sock:
        got, ending = await load.read(sock, leaves)
    tally.body_bytes += got
    tally.endings[ending] = tally.endings.get(ending, 0) + 1


async def probe(address: tuple[str, int], tally: Tally) -> None:
    request = f"GET /healthz HTTP/1.1\r\nHost: {address[0]}\r\nConnection: close\r\n\r\n".encode()
    started = time.monotonic()
    try:
        sock, answer = await ask(address, request, PROBE_TIMEOUT, None)
    except HttpError as error:
        tally.healthz_failed.append(str(error))
        return
    sock.close()
    if answer.status != 200:
        tally.healthz_failed.append(f"status {answer.status}")
    else:
        tally.healthz_s.append(time.monotonic() - started)


async def watch_loop_lag(until: float, tally: Tally, every: float = 0.05) -> None:
    """How late the event loop wakes up: if this grows, the load generator itself is the limit."""
    while time.monotonic() < until:
        asked = time.monotonic()
        await asyncio.sleep(every)
        tally.loop_lag_s.append(time.monotonic() - asked - every)


async def drive(load: Load, viewers: int, arrival: float, probe_every: float, seed: int) -> Tally:
    tally = Tally()
    rng = random.Random(seed)
    start = time.monotonic() + 0.5
    ends = start + arrival + load.watch
    tasks = [
        asyncio.create_task(
            viewer(
                load,
                start + arrival * i / viewers,
                rng.randrange(int(load.size * 0.4), int(load.size * 0.6)),
                tally,
            )
        )
        for i in range(viewers)
    ]
    tasks.append(asyncio.create_task(watch_loop_lag(ends, tally)))
    probes = []
    while time.monotonic() < ends:
        probes.append(asyncio.create_task(probe(load.address, tally)))
        await asyncio.sleep(probe_every)
    await asyncio.gather(*tasks, *probes)
    return tally


# --- the run ------------------------------------------------------------------------------------------


@dataclass
class ServerRun:
    tally: Tally
    seconds: float
    cpu_seconds: float
    peak_rss_mib: dict[str, float]
    views_published: int | None = None


def measure(
    name: str,
    load: Load,
    args: argparse.Namespace,
    processes: Sequence[tuple[str, psutil.Process]],
) -> ServerRun:
    print(f"{name}: {args.viewers} viewers at {args.rate:g} KiB/s for {args.watch:g} s ...", flush=True)
    cpu_before = harness.cpu_seconds([p for _, p in processes])
    started = time.monotonic()
    with harness.RssSampler(processes) as sampler:
        tally = asyncio.run(drive(load, args.viewers, args.arrival, args.probe, seed=11))
    return ServerRun(
        tally=tally,
        seconds=time.monotonic() - started,
        cpu_seconds=harness.cpu_seconds([p for _, p in processes]) - cpu_before,
        peak_rss_mib=sampler.peak,
    )


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_open_files_limit()
    scratch = memoryview(bytearray(256 * KIB))
    rate = args.rate * KIB
    runs: dict[str, ServerRun] = {}
    with harness.workdir(args.keep) as tmp, harness.rabbit_vhost() as rabbit:
        if args.keep:
            print(f"work folder: {tmp}")
        video = harness.make_video(tmp / "videos", mib=args.mib)
        size = video.stat().st_size
        harness.bind_view_queue(rabbit)
        views = harness.ViewCounter(rabbit)
        env = {
            "VIEWED_MESSAGING": "fanout",
            "RABBIT": rabbit,
            "VIDEOS_DIR": str(video.parent),
            "OUTBOX_DIR": str(tmp / "outbox"),
        }
        reader = paced_reader(rate, args.tick, scratch)

        def load(port: int, path: str) -> Load:
            return Load(("127.0.0.1", port), path, size, rate, args.watch, args.tick, reader)

        with (
            harness.service_lines("video-streaming", env, tmp) as services,
            harness.nginx(video.parent, tmp, psutil.cpu_count() or 2) as nginx,
        ):
            time.sleep(1.0)  # the outboxes connect; then everything is idle
            for server in args.only:
                if server == "flixtube":
                    web = harness.web(services)
                    assert web.port is not None
                    before, _ = views.settle()
                    runs[server] = measure(
                        server,
                        load(web.port, f"/video?path={video.name}"),
                        args,
                        harness.service_processes(services),
                    )
                    after, _ = views.settle(step=1.0)
                    runs[server].views_published = after - before
                else:
                    port = int(nginx.url.rsplit(":", 1)[1])
                    processes = [(harness.describe(p), p) for p in nginx.processes()]
                    runs[server] = measure(server, load(port, f"/{video.name}"), args, processes)
                time.sleep(2.0)  # closed connections settle before the next server's run
        views.close()
    return {"video_bytes": size, "runs": runs}


# --- the report ---------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def figures(run: ServerRun, viewers: int) -> dict[str, Any]:
    t = run.tally
    within = sum(1 for s in t.first_byte_s if s <= 1.0)
    out: dict[str, Any] = {
        "viewers": viewers,
        "first_byte_within_1s": round(within / viewers, 4),
        "first_byte_p50_ms": round(percentile(t.first_byte_s, 50) * 1000, 1),
        "first_byte_p99_ms": round(percentile(t.first_byte_s, 99) * 1000, 1),
        "first_byte_failed": len(t.first_byte_failed),
        "seeks": len(t.seek_s) + len(t.seek_failed),
        "seek_p50_ms": round(percentile(t.seek_s, 50) * 1000, 1),
        "seek_p99_ms": round(percentile(t.seek_s, 99) * 1000, 1),
        "seek_failed": len(t.seek_failed),
        "healthz_probes": len(t.healthz_s) + len(t.healthz_failed),
        "healthz_p99_ms": round(percentile(t.healthz_s, 99) * 1000, 1),
        "healthz_failed": len(t.healthz_failed),
        "body_mb": round(t.body_bytes / 1e6, 1),
        "starts_answered": t.starts_answered,
        "seeks_answered": t.seeks_answered,
        "endings": t.endings,
        "cpu_s": round(run.cpu_seconds, 1),
        "max_rss_mib": round(max(run.peak_rss_mib.values(), default=0.0), 1),
        "rss_mib": {label: round(v, 1) for label, v in run.peak_rss_mib.items()},
        "client_loop_lag_p99_ms": round(percentile(t.loop_lag_s, 99) * 1000, 1),
        "failures_sample": sorted(set(t.first_byte_failed + t.seek_failed + t.healthz_failed))[:5],
    }
    if run.views_published is not None:
        out["views_published"] = run.views_published
    return out


def report(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    runs: dict[str, ServerRun] = result["runs"]
    per = {name: figures(run, args.viewers) for name, run in runs.items()}
    rows = [
        [
            name,
            f"{f['first_byte_within_1s']:.1%}",
            f"{f['first_byte_p50_ms']:g} / {f['first_byte_p99_ms']:g}",
            f["first_byte_failed"],
            f"{f['seek_p50_ms']:g} / {f['seek_p99_ms']:g}",
            f["seek_failed"],
            f"{f['healthz_p99_ms']:g}",
            f"{f['healthz_failed']} of {f['healthz_probes']}",
            f["body_mb"],
            f["cpu_s"],
            f["max_rss_mib"],
        ]
        for name, f in per.items()
    ]
    print(
        f"\n{args.viewers} viewers at {args.rate:g} KiB/s, {args.watch:g} s each, arriving over "
        f"{args.arrival:g} s, one seek each; video {result['video_bytes'] / MIB:.1f} MiB"
    )
    headers = [
        "server",
        "1st byte <= 1 s",
        "1st byte p50/p99 ms",
        "no 1st byte",
        "seek p50/p99 ms",
        "seeks failed",
        "healthz p99 ms",
        "healthz failed",
        "MB delivered",
        "CPU s",
        "max RSS MiB",
    ]
    print(harness.table(headers, rows))
    out: dict[str, Any] = {"bench": "viewers", **harness.stamp(), "command": command(args), **per}
    if "flixtube" in per:
        ours = per["flixtube"]
        print(
            "\nvideo-streaming processes, peak RSS MiB: "
            + ", ".join(f"{label} {v:.1f}" for label, v in ours["rss_mib"].items())
        )
        print(
            f"views published: {ours['views_published']} for {ours['starts_answered']} playback starts "
            f"answered and {ours['seeks_answered']} seeks answered (exactly one per start, none per seek)"
        )
        if "nginx" in per:
            out["bytes_vs_nginx"] = round(ours["body_mb"] / max(per["nginx"]["body_mb"], 1e-9), 3)
        out["targets"] = targets(ours, out.get("bytes_vs_nginx"))
        for name, (value, target, met) in out["targets"].items():
            print(f"  {'met    ' if met else 'NOT MET'} {name}: {value} (target {target})")
    lags = {name: f["client_loop_lag_p99_ms"] for name, f in per.items()}
    print(f"load generator's loop lag p99 (ms): {lags}")
    return out


def targets(ours: dict[str, Any], bytes_ratio: float | None) -> dict[str, tuple[Any, str, bool]]:
    checks: dict[str, tuple[Any, str, bool]] = {
        "first_byte_within_1s": (
            ours["first_byte_within_1s"],
            f">= {TARGETS['first_byte_within_1s']}",
            ours["first_byte_within_1s"] >= TARGETS["first_byte_within_1s"],
        ),
        "seek_p99_ms": (
            ours["seek_p99_ms"],
            f"< {TARGETS['seek_p99_ms']:g}, no failure",
            ours["seek_p99_ms"] < TARGETS["seek_p99_ms"] and ours["seek_failed"] == 0,
        ),
        "healthz_p99_ms": (
            ours["healthz_p99_ms"],
            f"< {TARGETS['healthz_p99_ms']:g}, no failure",
            ours["healthz_p99_ms"] < TARGETS["healthz_p99_ms"] and ours["healthz_failed"] == 0,
        ),
        "rss_mib_per_process": (
            ours["max_rss_mib"],
            f"<= {TARGETS['rss_mib_per_process']:g}",
            ours["max_rss_mib"] <= TARGETS["rss_mib_per_process"],
        ),
        "views_per_start": (
            f"{ours['views_published']} / {ours['starts_answered']}",
            "exactly one per playback start",
            ours["views_published"] == ours["starts_answered"],
        ),
    }
    if bytes_ratio is not None:
        checks["bytes_vs_nginx"] = (
            bytes_ratio,
            f">= {TARGETS['bytes_vs_nginx']}",
            bytes_ratio >= TARGETS["bytes_vs_nginx"],
        )
    return checks


def command(args: argparse.Namespace) -> str:
    return (
        f"python -m bench.viewers --viewers {args.viewers} --rate {args.rate:g} --watch {args.watch:g} "
        f"--arrival {args.arrival:g} --tick {args.tick:g} --mib {args.mib}"
        + ("" if len(args.only) == len(SERVERS) else f" --only {','.join(args.only)}")
    )


def main(argv: list[str] | None = None) -> int:
    return harness.run_main(argv, parse, run, report)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
