"""gunicorn settings shared by every service: `gunicorn -c python:flixtube_common.gunicorn_conf APP`.

The app is preloaded in the master, so a bad setting stops gunicorn once, with one line, instead of
workers failing to boot in a loop. Threads do not survive fork: background work starts per worker.

Metrics: every worker writes its values to files in a folder made fresh for this master (so a restarted
master never adds up an old one's counts) and named in PROMETHEUS_MULTIPROC_DIR before the app, and with
it prometheus_client, is imported; `/metrics` in any worker sums them. A dead worker's gauges are dropped
(its counters stay: they are part of the totals). The folder goes when the master exits.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

from gunicorn.glogging import Logger as _Logger

# Imported under private names: gunicorn reads every public module name as a setting (`config` is one).
from flixtube_common import config as _config

_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Inside a folder the operator chose, if any (it must be writable), else in the temporary folder.
_metrics_dir = tempfile.mkdtemp(prefix="flixtube-metrics-", dir=os.environ.get(_MULTIPROC_DIR) or None)
os.environ[_MULTIPROC_DIR] = _metrics_dir


class _AppLogsRequests(_Logger):
    """gunicorn's logger without its access log: the app logs each request itself, and gunicorn builds
    an access record for every request whenever a logging config is given, even with no handler."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return


try:
    _port = _config.port(os.environ)
except _config.ConfigError as error:
    sys.exit(f"Error: {error}")

bind = [f"0.0.0.0:{_port}"]
preload_app = True
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
# Streams of large videos take time; keep-alive lets players reuse connections for their ranges.
timeout = 120
keepalive = 5
accesslog = None  # the app logs one JSON line per request itself
logger_class = _AppLogsRequests
# The control socket lives at one path per user: several services on one machine would share it.
control_socket_disable = True
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
    },
}


# The app's modules are imported in the hooks, after PROMETHEUS_MULTIPROC_DIR is set.
def post_fork(server: Any, worker: Any) -> None:
    from flixtube_common import web

    for work in web.background(worker.app.wsgi()):
        work.start()


def worker_exit(server: Any, worker: Any) -> None:
    from flixtube_common import tracing, web

    for work in web.background(worker.app.wsgi()):
        work.close()
    tracing.flush()


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    shutil.rmtree(_metrics_dir, ignore_errors=True)
