"""`make run`: the whole app on this machine, without Docker.

Starts an nx-27017 MongoDB-wire server with its data in .data/mongo, uses the local RabbitMQ in
`fanout` mode when one answers (else `http` mode), starts every Procfile line through honcho, and
prints the URLs, /metrics included (each consumer serves its own on METRICS_PORTS). OTEL_* variables
in the environment reach every process: `OTEL_TRACES_EXPORTER=console make run` prints the spans. Ctrl-C
stops everything it started.
"""

from __future__ import annotations

import os
import shlex

from honcho.manager import Manager

from devtools.procfile import (
    LOCAL_RABBIT,
    ROOT,
    SERVICES,
    free_port,
    mongo_command,
    process_env,
    rabbit_reachable,
    read_procfile,
    service_dir,
)

PORTS = {"video-streaming": 4000, "history": 4001, "recommendations": 4002}
METRICS_PORTS = {"history": 4011, "recommendations": 4012}  # the consumers' own /metrics
DB_PORT = int(os.environ.get("FLIXTUBE_DB_PORT", "27017"))


def main() -> int:
    rabbit = os.environ.get("RABBIT", LOCAL_RABBIT)
    mode = os.environ.get("VIEWED_MESSAGING") or ("fanout" if rabbit_reachable(rabbit) else "http")
    common = {
        "VIEWED_MESSAGING": mode,
        "RABBIT": rabbit,
        "DBHOST": f"mongodb://127.0.0.1:{DB_PORT}",
        "HISTORY_URL": f"http://127.0.0.1:{PORTS['history']}",
        "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "1"),
        "OUTBOX_DIR": os.environ.get("OUTBOX_DIR", str(ROOT / ".data" / "outbox")),
    }
    # Where an app behind a front listens (video-streaming's, behind nginx on PORT); one per service.
    app_ports = {service: str(free_port()) for service in SERVICES}
    manager = Manager()
    manager.add_process(
        "db", shlex.join(mongo_command(DB_PORT, ROOT / ".data" / "mongo")), env=process_env({})
    )
    for service in SERVICES:
        for kind, command in read_procfile(service).items():
            # A consumer has nothing to do in http mode and exits; honcho would then stop everything.
            if kind != "web" and mode == "http":
                continue
            ports = {"PORT": str(PORTS[service]), "APP_PORT": app_ports[service]}
            if service in METRICS_PORTS:
                ports["METRICS_PORT"] = str(METRICS_PORTS[service])
            env = process_env({**common, **ports})
            manager.add_process(f"{service}.{kind}", command, env=env, cwd=str(service_dir(service)))
    print(f"FlixTube ({mode} mode, MongoDB-wire server on 127.0.0.1:{DB_PORT}, data in .data/mongo)")
    for service, port in PORTS.items():
        print(f"  {service:16} http://localhost:{port}/")
    print("  watch a video:   http://localhost:4000/   recent views: http://localhost:4001/")
    print("  metrics:         " + "  ".join(f"http://localhost:{port}/metrics" for port in PORTS.values()))
    if mode != "http":
        consumers = "  ".join(f"http://localhost:{port}/metrics" for port in METRICS_PORTS.values())
        print(f"  consumer metrics: {consumers}")
    tracing = os.environ.get("OTEL_TRACES_EXPORTER")
    print(f"  traces:          {tracing or 'off (e.g. OTEL_TRACES_EXPORTER=console make run)'}")
    manager.loop()
    return manager.returncode or 0


if __name__ == "__main__":
    raise SystemExit(main())
