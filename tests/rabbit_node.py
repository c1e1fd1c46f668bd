"""A RabbitMQ node of a test's own, which the test may kill -9 and start again on its data.

The shared broker on 5672 serves every other test and tool on the machine and must never be stopped,
so a test that kills a broker starts this one: its own node name, AMQP and distribution ports, data
(mnesia) and log folders, config file, and Erlang cookie (a HOME of its own). `kill` sends SIGKILL to
this node's Erlang VM (beam.smp) only, found as the process this node's start script became.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pika
import psutil
from pika.exceptions import AMQPError

from devtools import procfile

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")  # Debian's, run directly (its wrapper would su)
CTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")


class RabbitNode:
    def __init__(self, base: Path, definitions: Path | None = None) -> None:
        self.base = base
        self.name = f"flixtube-test-{uuid.uuid4().hex[:8]}@localhost"
        self.port = procfile.free_port()
        self.dist_port = procfile.free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}"
        self.definitions = definitions
        self.process: subprocess.Popen[bytes] | None = None
        self.home = base / "home"
        self._configure()

    def _configure(self) -> None:
        for folder in ("mnesia", "log", "home"):
            (self.base / folder).mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        if not cookie.exists():  # the CLI tools read it from HOME, as the node does
            cookie.write_text(uuid.uuid4().hex.upper())
            cookie.chmod(0o400)
        lines = [f"listeners.tcp.default = 127.0.0.1:{self.port}", "log.console = false"]
        if self.definitions is not None:
            lines.append(f"load_definitions = {self.definitions}")
        (self.base / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
        (self.base / "enabled_plugins").write_text("[].\n")

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.home),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.base / "node.pid"),
        }

    def start(self, timeout: float = 120) -> None:
        with (self.base / "server.out").open("ab") as output:
            self.process = subprocess.Popen(
                [str(SERVER)], env=self.env(), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while not self.reachable():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.output()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not accept AMQP within {timeout} s: {self.output()}")
            time.sleep(0.25)

    def reachable(self) -> bool:
        params = pika.URLParameters(self.url)
        params.socket_timeout = params.stack_timeout = 2
        params.connection_attempts = 1
        try:
            pika.BlockingConnection(params).close()
        except AMQPError:
            return False
        return True

    def beam(self) -> psutil.Process:
        """The node's Erlang VM: the start script execs it, or it is the script's child."""
        assert self.process is not None, "start() first"
        root = psutil.Process(self.process.pid)
        for candidate in (root, *root.children(recursive=True)):
            if candidate.name().startswith("beam"):
                return candidate
        raise RuntimeError(f"no beam process under pid {self.process.pid}")

    def kill(self) -> None:
        """kill -9 of this node's VM, as a crash or an OOM kill would end it; waits until it is gone."""
        beam = self.beam()
        beam.send_signal(signal.SIGKILL)
        beam.wait(30)
        assert self.process is not None
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
        self.process = None

    def stop(self) -> None:
        """At the end of the test: the node, and what its VM left (port helpers), gone."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
        self.process = None

    def ctl(self, *args: str) -> str:
        done = subprocess.run(
            [str(CTL), "-q", "-n", self.name, *args],
            env=self.env(),
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return done.stdout

    def output(self) -> str:
        logs = [self.base / "server.out", *sorted((self.base / "log").glob("*.log"))]
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in logs if path.exists())
