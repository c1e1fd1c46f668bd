"""Multiprocess mode as gunicorn uses it: forked workers' values add up, a dead worker's gauges go.

Each case runs in a fresh interpreter: prometheus_client picks multiprocess mode when it is imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from devtools.procfile import SHARED_SRC

FORKED_WORKERS = """
import json, os, sys
os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families
from flixtube_common import metrics

def read():
    body, _ = metrics.exposition(None)
    families = text_string_to_metric_families(body.decode())
    return {s.name: s.value for family in families for s in family.samples if not s.labels}

workers = []
for views in (2, 3):
    pid = os.fork()
    if pid == 0:
        metrics.PLAYBACK_STARTS.inc(views)
        metrics.OUTBOX_VIEWS.inc(views)
        os._exit(0)
    os.waitpid(pid, 0)
    workers.append(pid)
both = read()
multiprocess.mark_process_dead(workers[0])
one = read()
print(json.dumps([both["flixtube_playback_starts_total"], both["flixtube_outbox_views"],
                  one["flixtube_playback_starts_total"], one["flixtube_outbox_views"]]))
"""

GUNICORN_CONFIG = """
import json, os
from flixtube_common import gunicorn_conf
folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
made = os.path.isdir(folder) and not os.listdir(folder)
gunicorn_conf.on_exit(None)
print(json.dumps([folder, made, os.path.exists(folder)]))
"""


def run(script: str, *args: str, env: dict[str, str] | None = None) -> list:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**os.environ, "PYTHONPATH": str(SHARED_SRC), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_forked_workers_add_up_and_a_dead_one_leaves_the_gauges(tmp_path: Path) -> None:
    assert run(FORKED_WORKERS, str(tmp_path)) == [5, 5, 5, 3]  # its counts stay part of the totals


def test_each_gunicorn_master_gets_a_fresh_folder_removed_at_exit(tmp_path: Path) -> None:
    (tmp_path / "counter_1.db").write_bytes(b"an old master's values")
    for _ in range(2):
        folder, made_empty, left = run(GUNICORN_CONFIG, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
        assert Path(folder).parent == tmp_path and made_empty and not left
    assert [path.name for path in tmp_path.iterdir()] == ["counter_1.db"]
