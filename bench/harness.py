"""What every benchmark shares: a private broker vhost, a MongoDB-wire server, services started from
their Procfiles, a generated video, wrk runs, resident memory, and the table + JSON output."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import psutil
from pika.exceptions import AMQPError

from devtools import procfile

BENCH_DIR = Path(__file__).resolve().parent
WRK_SCRIPT = BENCH_DIR / "wrk_ranges.lua"
SHARED_SRC = procfile.ROOT / "libs" / "flixtube_common" / "src"
MIB = 1024 * 1024
VIEW_QUEUE = "history.viewed"


# --- environment -------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {cpu}, {psutil.virtual_memory().total // MIB} MiB RAM"


@contextlib.contextmanager
def workdir(keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="flixtube-bench-"))
    path.chmod(0o755)  # nginx workers run as an unprivileged user when started by root
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def rabbit_vhost(name: str | None = None) -> Iterator[str]:
    """A fresh vhost on the local broker (guest/guest), deleted afterwards; yields its AMQP URL."""
    vhost = name or f"flixtube-bench-{os.getpid()}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"{procfile.LOCAL_RABBIT}/{vhost}"
    finally:
        rabbitmqctl("delete_vhost", vhost, check=False)


def rabbitmqctl(*args: str, check: bool = True, attempts: int = 3) -> None:
    """rabbitmqctl, retried: it fails now and then while other tools talk to the broker too."""
    for attempt in range(attempts):
        done = subprocess.run(["rabbitmqctl", "-q", *args], check=False, capture_output=True, text=True)
        if done.returncode == 0:
            return
        time.sleep(1 + attempt)
    if check:
        raise RuntimeError(
            f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}"
        )


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


@contextlib.contextmanager
def mongo_server(data_dir: Path) -> Iterator[str]:
    """An nx-27017 server on a free port with its data in `data_dir`; yields its MongoDB URL."""
    port = procfile.free_port()
    command = procfile.mongo_command(port, data_dir)  # makes data_dir
    with (data_dir / "nx-27017.out").open("wb") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        procfile.wait_for_port(port)
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        procfile.stop(process)


def local_pythonpath() -> str:
    """This checkout's shared package first: the venv's editable install may point at another checkout."""
    return os.pathsep.join(p for p in (str(SHARED_SRC), os.environ.get("PYTHONPATH", "")) if p)


@dataclass
class Service:
    name: str
    kind: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def processes(self) -> list[psutil.Process]:
        """The server processes of this Procfile line (Python, gunicorn, nginx; the shell left out)."""
        try:
            root = psutil.Process(self.process.pid)
            found = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        return [p for p in found if _is_server(p)]


def _is_server(process: psutil.Process) -> bool:
    try:
        name = process.name()
        return "python" in name or "nginx" in name or "gunicorn" in " ".join(process.cmdline()[:2])
    except psutil.Error:
        return False


@contextlib.contextmanager
def service(
    name: str, kind: str, env: Mapping[str, str], logs: Path, ready_path: str | None = "/readyz"
) -> Iterator[Service]:
    """Start one Procfile line exactly as the Procfile says, wait until it is ready, stop it after.

    The web line gets a free PORT unless `env` names one.
    """
    extra = {**dict(env), "PYTHONPATH": local_pythonpath()}
    if kind == "web" and "PORT" not in extra:
        extra["PORT"] = str(procfile.free_port())
    port = int(extra["PORT"]) if "PORT" in extra else None
    log = logs / f"{name}.{kind}.log"
    with log.open("wb") as output:
        process = procfile.start(name, kind, extra, output)
    started = Service(name, kind, process, log, port)
    try:
        if kind == "web" and ready_path is not None:
            procfile.wait_for_http(f"{started.url}{ready_path}", timeout=60)
        yield started
    finally:
        procfile.stop(process)


@contextlib.contextmanager
def service_lines(
    name: str, env: Mapping[str, str], logs: Path, ready_path: str | None = "/readyz"
) -> Iterator[list[Service]]:
    """Every Procfile line of a service with one PORT and one APP_PORT (where a front such as
    video-streaming's nginx reaches its app); ready once the web line answers `ready_path`."""
    ports = {"PORT": str(procfile.free_port()), "APP_PORT": str(procfile.free_port())}
    with contextlib.ExitStack() as stack:
        started = [
            stack.enter_context(service(name, kind, {**env, **ports}, logs, ready_path=None))
            for kind in procfile.read_procfile(name)
        ]
        if ready_path is not None:
            procfile.wait_for_http(f"http://127.0.0.1:{ports['PORT']}{ready_path}", timeout=60)
        yield started


def web(services: Sequence[Service]) -> Service:
    return next(s for s in services if s.kind == "web")


def make_video(folder: Path, name: str = "bench.mp4", mib: int = 8) -> Path:
    """A real H.264 video of about `mib` MiB, made by ffmpeg (kept out of the repository).

    Without ffmpeg, `mib` MiB of random bytes: the servers send bytes and never look inside.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if shutil.which("ffmpeg") is None:
        print("ffmpeg not found: the benchmark video is random bytes (apt-get install ffmpeg for a real one)")
        target.write_bytes(os.urandom(mib * MIB))
        target.chmod(0o644)
        return target
    seconds = 8
    subprocess.run(
        [
            "ffmpeg", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-b:v", f"{mib * 8 * 1024 // seconds}k",
            "-c:a", "aac", "-movflags", "+faststart", str(target),
        ],
        check=True,
    )  # fmt: skip
    target.chmod(0o644)
    return target


# --- nginx -------------------------------------------------------------------------------------

NGINX_CONF = """\
worker_processes {workers};
pid {root}/nginx.pid;
error_log {root}/nginx.error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush {nopush};
    keepalive_timeout 65;
    keepalive_requests 1000000;
    types {{ video/mp4 mp4; }}
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {videos};
        location = /healthz {{ return 200 "ok\\n"; }}
    }}
}}
"""


@dataclass
class Nginx:
    url: str
    pid: int

    def processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []


@contextlib.contextmanager
def nginx(videos: Path, root: Path, workers: int) -> Iterator[Nginx]:
    """Debian's nginx serving `videos` as static files."""
    port = procfile.free_port()
    conf = root / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            workers=workers,
            root=root,
            port=port,
            videos=videos,
            nopush=os.environ.get("BENCH_NGINX_NOPUSH", "on"),
        )
    )
    process = subprocess.Popen(
        ["/usr/sbin/nginx", "-p", str(root), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=(root / "nginx.out").open("wb"),
        start_new_session=True,
    )
    try:
        procfile.wait_for_port(port)
        yield Nginx(f"http://127.0.0.1:{port}", process.pid)
    finally:
        procfile.stop(process, timeout=5)


# --- load --------------------------------------------------------------------------------------


@dataclass
class WrkRun:
    requests: int
    bytes: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_seconds: float = 0.0  # user + system time the server's processes spent during the run
    drain_seconds: float = 0.0  # after wrk stopped: until the views of the run had left the outboxes
    broker_cpu_seconds: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def mbps(self) -> float:
        return self.bytes / self.seconds / 1e6


def wrk(
    url: str,
    mode: str,
    *,
    seconds: float,
    connections: int,
    threads: int,
    file_size: int,
    span: int,
) -> WrkRun:
    """One wrk run. `mode`: full (no Range), range (random offsets >= 1), start (from byte 0), byte1."""
    command = [
        "wrk", "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
        "--timeout", "10s", "-s", str(WRK_SCRIPT), url, "--", mode, str(file_size), str(span),
    ]  # fmt: skip
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=seconds + 30)
    line = next(line for line in done.stdout.splitlines() if line.startswith("BENCH "))
    data = json.loads(line.removeprefix("BENCH "))
    return WrkRun(
        requests=data["requests"],
        bytes=data["bytes"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["errors"],
    )


@dataclass
class Series:
    """The runs of one server in one scenario, over the alternating rounds."""

    runs: list[WrkRun] = field(default_factory=list)

    def add(self, run: WrkRun) -> None:
        self.runs.append(run)

    @property
    def rps(self) -> float:
        return sum(r.requests for r in self.runs) / sum(r.seconds for r in self.runs)

    @property
    def mbps(self) -> float:
        return sum(r.bytes for r in self.runs) / sum(r.seconds for r in self.runs) / 1e6

    @property
    def p50_ms(self) -> float:
        return statistics.median(r.p50_ms for r in self.runs)

    @property
    def p99_ms(self) -> float:
        return statistics.median(r.p99_ms for r in self.runs)

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.runs)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)

    @property
    def broker_cpu_ms_per_request(self) -> float:
        return sum(r.broker_cpu_seconds for r in self.runs) * 1000 / max(1, self.requests)

    @property
    def sustained_rps(self) -> float:
        """Requests per second counting the time their views took to leave the outboxes."""
        return self.requests / sum(r.seconds + r.drain_seconds for r in self.runs)

    @property
    def drain_seconds(self) -> float:
        return sum(r.drain_seconds for r in self.runs)

    @property
    def cpu_ms_per_request(self) -> float:
        """Server CPU per request: much steadier than throughput on a machine that does other work."""
        return sum(r.cpu_seconds for r in self.runs) * 1000 / max(1, self.requests)

    def figures(self) -> dict[str, float]:
        return {
            "rps": round(self.rps, 1),
            "mbps": round(self.mbps, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "requests": self.requests,
            "errors": self.errors,
            "cpu_ms_per_req": round(self.cpu_ms_per_request, 3),
            "sustained_rps": round(self.sustained_rps, 1),
            "drain_s": round(self.drain_seconds, 2),
            "broker_cpu_ms_per_req": round(self.broker_cpu_ms_per_request, 3),
        }


# --- memory ------------------------------------------------------------------------------------


def cpu_seconds(processes: Sequence[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def broker_processes() -> list[psutil.Process]:
    """The local RabbitMQ's Erlang VM (shared with anything else that uses the broker)."""
    found = []
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "beam.smp":
            found.append(process)
    return found


def rss_mib(process: psutil.Process) -> float:
    try:
        return process.memory_info().rss / MIB
    except psutil.Error:
        return 0.0


def describe(process: psutil.Process) -> str:
    try:
        title = " ".join(process.cmdline()).split()
        if title[:1] == ["nginx:"]:  # nginx titles its processes "nginx: master process ..."
            return f"pid {process.pid} nginx {title[1]}"
        parent = process.parent()
        role = "worker" if parent is not None and _is_server(parent) else "main"
        return f"pid {process.pid} {role}"
    except psutil.Error:
        return f"pid {process.pid}"


class RssSampler:
    """Samples the resident memory of some processes in the background; keeps each one's peak."""

    def __init__(self, processes: Sequence[tuple[str, psutil.Process]], every: float = 0.25) -> None:
        self._processes = processes
        self._every = every
        self.peak: dict[str, float] = {label: 0.0 for label, _ in processes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            for label, process in self._processes:
                self.peak[label] = max(self.peak[label], rss_mib(process))
            if self._stop.wait(self._every):
                return


def service_processes(services: Sequence[Service]) -> list[tuple[str, psutil.Process]]:
    return [(f"{s.name}.{s.kind} {describe(p)}", p) for s in services for p in s.processes()]


# --- command line ------------------------------------------------------------------------------


def argument_parser(doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, data, video)")
    return parser


def add_load_options(parser: argparse.ArgumentParser, seconds: float, seconds_help: str) -> None:
    """The wrk load every stream benchmark drives: duration, connections, threads, video size."""
    parser.add_argument(
        "--seconds", type=float, default=seconds, help=f"{seconds_help} (default {seconds:g})"
    )
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--mib", type=int, default=8, help="size of the generated video in MiB (default 8)")


def run_main(
    argv: list[str] | None,
    parse: Callable[[list[str] | None], argparse.Namespace],
    run: Callable[[argparse.Namespace], dict[str, Any]],
    report: Callable[[argparse.Namespace, dict[str, Any]], dict[str, Any]],
) -> int:
    """Parse, run, print the report's tables and, as the last line, its figures as JSON."""
    args = parse(argv)
    emit_json(report(args, run(args)))
    return 0


# --- output ------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        " | ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def emit_json(figures: Mapping[str, Any]) -> None:
    """The last line of every benchmark: its figures as one JSON object."""
    print(json.dumps(figures, separators=(",", ":")), flush=True)


def stamp() -> dict[str, str]:
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine()}
