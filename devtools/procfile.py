"""Each service's Procfile is the one place that says how to start it; everything here reads it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import pika
from pika.exceptions import AMQPError

ROOT = Path(__file__).resolve().parent.parent
SHARED_SRC = ROOT / "libs" / "flixtube_common" / "src"
SERVICES = ("video-streaming", "history", "recommendations")
LOCAL_RABBIT = "amqp://guest:guest@127.0.0.1:5672"  # guest/guest: local development only


def service_dir(service: str) -> Path:
    return ROOT / "services" / service


def read_procfile(service: str) -> dict[str, str]:
    """The Procfile's lines as {process type: command}."""
    lines = (service_dir(service) / "Procfile").read_text().splitlines()
    entries = (line.split(":", 1) for line in lines if line.strip() and not line.lstrip().startswith("#"))
    return {kind.strip(): command.strip() for kind, command in entries}


def process_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment with the project's Python first on PATH, plus `extra`."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # The shared package of this checkout, whichever checkout the environment was installed from.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SHARED_SRC), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def start(
    service: str, kind: str, env: Mapping[str, str], output: IO[bytes] | int | None = None
) -> subprocess.Popen[bytes]:
    """Run one Procfile line from the service's folder, as its own process group."""
    return subprocess.Popen(
        read_procfile(service)[kind],
        shell=True,
        cwd=service_dir(service),
        env=process_env(env),
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        start_new_session=True,
    )


def mongo_command(port: int, data_dir: Path) -> list[str]:
    """nx-27017, a MongoDB-wire server over SQLite, keeping its data, log and pid in `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    server = Path(sys.executable).parent / "nx-27017"
    return [
        str(server),
        "--host",
        "127.0.0.1",
        "-p",
        str(port),
        "--data-dir",
        str(data_dir),
        "--log-file",
        str(data_dir / "server.log"),
        "--pid-file",
        str(data_dir / "server.pid"),
    ]


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    """Signal the whole process group; escalate to SIGKILL after `timeout` seconds."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


def wait_for_http(url: str, timeout: float = 30, status: int = 200) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == status:
                    return
                last = response.status
        except urllib.error.HTTPError as error:
            last = error.code
        except OSError as error:
            last = error
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer {status} within {timeout} s (last: {last})")


def rabbit_reachable(url: str = LOCAL_RABBIT, timeout: float = 2) -> bool:
    params = pika.URLParameters(url)
    params.socket_timeout = params.stack_timeout = timeout
    params.connection_attempts = 1
    try:
        pika.BlockingConnection(params).close()
    except AMQPError:
        return False
    return True
