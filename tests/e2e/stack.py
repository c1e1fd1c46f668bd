"""The running app as the browser tests see it: its URLs, its view counts, and how to start its parts."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext

from devtools.procfile import start
from tests.harness import rabbitmqctl

TIMEOUT_MS = 15_000  # for every browser action and assertion: generous, for busy CI machines
MakeContext = Callable[..., BrowserContext]  # the make_context fixture: new_context(**options)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@dataclass(frozen=True)
class RunningApp:
    """The started app: each service's base URL (no trailing slash) and what the tests ask of it."""

    video_streaming: str
    history: str
    recommendations: str
    vhost: str
    videos_dir: Path

    def history_views(self, video: str) -> int:
        rows = get_json(f"{self.history}/history?limit=1000")["history"]
        return sum(row["videoPath"] == video for row in rows)

    def recommended_views(self, video: str) -> int:
        rows = get_json(f"{self.recommendations}/recommendations?limit=100")["recommendations"]
        return next((row["views"] for row in rows if row["videoPath"] == video), 0)

    def views_sent(self) -> int:
        return get_json(f"{self.video_streaming}/stats")["views"]["sent"]

    def settled(self, sent: int) -> bool:
        """Whether `sent` views left video-streaming and every queue is drained (so all are stored)."""
        stats = get_json(f"{self.video_streaming}/stats")["views"]
        if stats["sent"] < sent or stats["buffered"]:
            return False
        queues = json.loads(
            rabbitmqctl("list_queues", "-p", self.vhost, "name", "messages", "--formatter=json")
        )
        return all(queue["messages"] == 0 for queue in queues if queue["name"].endswith(".viewed"))


def start_logged(service: str, kind: str, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    """Start one Procfile line with its output appended to `logs`/SERVICE.KIND.log."""
    with (logs / f"{service}.{kind}.log").open("ab") as output:
        return start(service, kind, env, output)
