"""Real servers for tests: an nx-27017 MongoDB-wire server, a RabbitMQ vhost, and FlixTube's processes.

Everything is started from the services' Procfiles (devtools.procfile), on free ports, with logs kept
in the test's temporary folder so a failure shows what each process said.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import pymongo
import requests

from devtools import procfile

RABBIT_HOST = "amqp://guest:guest@127.0.0.1:5672"


def wait_until(condition: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """Poll `condition` until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {value!r})")
        time.sleep(0.05)


class MongoServer:
    """An nx-27017 server that tests may kill and start again on the same data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = procfile.free_port()
        self.url = f"mongodb://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.data_dir.parent / f"{self.data_dir.name}.log").open("ab") as log:
            self.process = subprocess.Popen(
                procfile.mongo_command(self.port, self.data_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procfile.wait_for_port(self.port)

    def kill(self) -> None:
        if self.process is not None:
            procfile.stop(self.process, sig=9)
            self.process = None

    def client(self) -> pymongo.MongoClient[dict[str, Any]]:
        return pymongo.MongoClient(self.url, serverSelectionTimeoutMS=5000, tz_aware=True)


def rabbitmqctl(*args: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=120
    )
    return done.stdout


def vhost_of(rabbit_url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(rabbit_url).path.lstrip("/"))


@contextmanager
def rabbit_vhost() -> Iterator[str]:
    """A fresh vhost for one test (the contract's queue and exchange names are fixed), removed after."""
    vhost = f"test-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield f"{RABBIT_HOST}/{urllib.parse.quote(vhost, safe='')}"
    finally:
        rabbitmqctl("delete_vhost", vhost)


@dataclass
class Process:
    service: str
    kind: str
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.popen = procfile.start(self.service, self.kind, self.env, output)

    def stop(self, sig: int = 15) -> int:
        assert self.popen is not None
        return procfile.stop(self.popen, sig=sig)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class FlixTube:
    """The three services (web and worker lines) started from their Procfiles with one configuration."""

    mode: str
    tmp: Path
    db_url: str
    rabbit_url: str
    videos_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    app_ports: dict[str, int] = field(default_factory=dict)  # where an app behind a front listens
    metrics_ports: dict[str, int] = field(default_factory=dict)  # the consumers' own /metrics
    _client: pymongo.MongoClient[dict[str, Any]] | None = None

    def env(self, service: str) -> dict[str, str]:
        return {
            "PORT": str(self.ports[service]),
            "APP_PORT": str(self.app_ports[service]),
            "VIEWED_MESSAGING": self.mode,
            "RABBIT": self.rabbit_url,
            "DBHOST": self.db_url,
            "DBNAME": f"{service}-{self.tmp.name}"[:60],
            "HISTORY_URL": self.url("history"),
            "VIDEOS_DIR": str(self.videos_dir),
            "OUTBOX_DIR": str(self.tmp / "outbox"),
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": "8",
            "METRICS_PORT": str(self.metrics_ports[service]),
            **self.extra_env,
        }

    def url(self, service: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def start(self, services: tuple[str, ...] = procfile.SERVICES) -> FlixTube:
        for service in procfile.SERVICES:  # every service gets a port, so each knows where the others are
            self.ports.setdefault(service, procfile.free_port())
            self.app_ports.setdefault(service, procfile.free_port())
            self.metrics_ports.setdefault(service, procfile.free_port())
        for service in services:
            for kind in procfile.read_procfile(service):
                process = Process(service, kind, self.env(service), self.tmp / f"{service}.{kind}.log")
                process.start()
                self.processes[f"{service}.{kind}"] = process
        for service in services:
            procfile.wait_for_http(self.url(service, "/readyz"), timeout=60)
        return self

    def stop(self) -> None:
        for process in self.processes.values():
            if process.popen is not None:
                process.stop()
        if self._client is not None:
            self._client.close()

    def restart(self, name: str) -> None:
        self.processes[name].start()

    def get_json(self, service: str, path: str) -> Any:
        response = requests.get(self.url(service, path), timeout=10)
        response.raise_for_status()
        return response.json()

    def history(self) -> list[dict[str, Any]]:
        return self.get_json("history", "/history?limit=1000")["history"]

    def view_counts(self) -> dict[str, int]:
        rows = self.get_json("recommendations", "/recommendations?limit=100")["recommendations"]
        return {row["videoPath"]: row["views"] for row in rows}

    def database(self, service: str) -> Any:
        """The service's own database, read directly (one client per app, closed by stop())."""
        if self._client is None:
            self._client = pymongo.MongoClient(self.db_url, serverSelectionTimeoutMS=5000, tz_aware=True)
        return self._client[self.env(service)["DBNAME"]]

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{p.output()[-4000:]}" for name, p in self.processes.items())


def publish(
    rabbit_url: str,
    bodies: list[bytes],
    exchange: str,
    routing_key: str,
    message_ids: list[str | None] | None = None,
) -> None:
    """Publish raw bodies with confirms, as any other publisher of the design could."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        ids = message_ids or [None] * len(bodies)
        for body, message_id in zip(bodies, ids, strict=True):
            properties = pika.BasicProperties(
                delivery_mode=2, content_type="application/json", message_id=message_id
            )
            channel.basic_publish(exchange, routing_key, body, properties)
    finally:
        connection.close()


def view_body(video_path: str, **extra: str) -> bytes:
    return json.dumps({"videoPath": video_path, **extra}).encode()


def queue_depth(rabbit_url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()


def get_all(rabbit_url: str, queue: str) -> list[tuple[Any, bytes]]:
    """Take every message now in `queue` (acked): (properties, body) pairs."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    taken = []
    try:
        channel = connection.channel()
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((properties, body))
    finally:
        connection.close()
