"""Chaos: a steady stream of playbacks while every part of the app is killed with SIGKILL at random
moments, and afterwards every playback that was answered is exactly one view in history and in
recommendations.

Killed, each at least once: video-streaming (one gunicorn worker, or the whole process group), history's
worker, recommendations' worker, the MongoDB-wire server (started again on its data folder), and the
broker (kill -9 of its Erlang VM, then started again on its data). The broker is a node of the test's
own (tests/rabbit_node.py), loading the project's definitions at start as compose and Kubernetes do.
Each playback asks for a video of its own, so each view can be traced to the request that caused it.

FLIXTUBE_CHAOS_SECONDS (default 60) sets how long the playbacks and kills go on; FLIXTUBE_CHAOS_SEED
replays a run (the seed is printed).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import requests

from flixtube_common import broker_definitions
from tests.harness import FlixTube, MongoServer, wait_until
from tests.rabbit_node import RabbitNode

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("FLIXTUBE_CHAOS_SECONDS", "60"))
PLAYBACKS_PER_SECOND = 12
KINDS = (
    "video-streaming worker",
    "video-streaming",
    "history worker",
    "recommendations worker",
    "mongodb",
    "broker",
)


class ChaosApp(FlixTube):
    """The app with two video-streaming workers sharing one outbox folder, as in production."""

    def env(self, service: str) -> dict[str, str]:
        env = super().env(service)
        if service == "video-streaming":
            env["WEB_CONCURRENCY"] = "2"
        return env


@dataclass
class Player:
    """Plays the videos one after another, each once, at a steady pace; remembers which were answered."""

    url: str
    names: list[str]
    answered: list[str] = field(default_factory=list)
    failed: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        session = requests.Session()
        for name in self.names:
            if self.stop.is_set():
                return
            started = time.monotonic()
            try:
                response = session.get(
                    self.url, params={"path": name}, headers={"Range": "bytes=0-"}, timeout=5
                )
                ok = response.status_code in (200, 206) and len(response.content) == 512
            except requests.RequestException:
                ok = False
                session = requests.Session()
            if ok:
                self.answered.append(name)
            else:
                self.failed += 1
            self.stop.wait(max(0.0, 1 / PLAYBACKS_PER_SECOND - (time.monotonic() - started)))


def gunicorn_workers(app: FlixTube) -> list[psutil.Process]:
    popen = app.processes["video-streaming.web"].popen
    assert popen is not None
    return [
        p for p in psutil.Process(popen.pid).children(recursive=True) if "gunicorn" in " ".join(p.cmdline())
    ][1:]


def video_paths(app: FlixTube, service: str, collection: str) -> Counter[str]:
    return Counter(
        doc.get("videoPath") for doc in app.database(service)[collection].find({}, {"videoPath": 1})
    )


def test_every_answered_playback_is_one_view_whatever_is_killed(tmp_path: Path) -> None:
    seed = int(os.environ.get("FLIXTUBE_CHAOS_SEED", str(random.randrange(2**32))))
    chance = random.Random(seed)
    videos = tmp_path / "videos"
    videos.mkdir()
    names = [f"p{n:05}.mp4" for n in range(int(SECONDS * PLAYBACKS_PER_SECOND * 2))]
    for name in names:
        (videos / name).write_bytes(os.urandom(512))

    broker_definitions.write(tmp_path / "definitions", "guest", "guest")
    node = RabbitNode(tmp_path / "rabbit", tmp_path / "definitions")
    mongo = MongoServer(tmp_path / "mongo-data")
    node.start()
    mongo.start()
    app = ChaosApp("fanout", tmp_path, mongo.url, node.url, videos)
    kills: Counter[str] = Counter()
    try:
        app.start()
        player = Player(app.url("video-streaming", "/video"), names)
        playing = threading.Thread(target=player.run, name="player")
        playing.start()
        schedule = list(KINDS) * 2
        chance.shuffle(schedule)
        gap = SECONDS / len(schedule)
        ends = time.monotonic() + SECONDS
        for kind in schedule:
            time.sleep(chance.uniform(0.3, 1.7) * gap * 0.5)
            kill(kind, app, mongo, node, chance)
            kills[kind] += 1
            time.sleep(max(0.0, chance.uniform(0.3, 1.0) * gap * 0.5))
        time.sleep(max(0.0, ends - time.monotonic()))
        player.stop.set()
        playing.join(30)

        answered = set(player.answered)
        assert len(answered) == len(player.answered)

        def settled() -> bool:
            in_history = video_paths(app, "history", "videos")
            in_recommendations = video_paths(app, "recommendations", "views")
            return answered <= set(in_history) and answered <= set(in_recommendations)

        wait_until(settled, timeout=240, what="every answered playback stored by both subscribers")
        time.sleep(3)  # anything still in flight (views of unanswered requests) arrives too
        history = video_paths(app, "history", "videos")
        recommendations = video_paths(app, "recommendations", "views")
        report = (
            f"chaos seed {seed}: {len(answered)} playbacks answered, {player.failed} not answered; "
            f"kills {dict(kills)}; views stored: history {sum(history.values())}, "
            f"recommendations {sum(recommendations.values())} "
            f"(of requests not answered: {len(set(history) - answered)}"
            f" / {len(set(recommendations) - answered)})"
        )
        print(report)
        (tmp_path.parent / "chaos-report.txt").write_text(report + "\n")
        assert [name for name, count in history.items() if count > 1] == [], report
        assert [name for name, count in recommendations.items() if count > 1] == [], report
        assert all(history[name] == 1 and recommendations[name] == 1 for name in answered), report
        assert set(history) <= set(names) and set(recommendations) <= set(names)
        assert len(answered) > SECONDS * PLAYBACKS_PER_SECOND / 3, f"too few playbacks answered: {report}"
        assert set(kills) == set(KINDS)
    finally:
        app.stop()
        mongo.kill()
        node.stop()


def kill(kind: str, app: FlixTube, mongo: MongoServer, node: RabbitNode, chance: random.Random) -> None:
    """SIGKILL one part of the app, and start it again the way its supervisor would."""
    down = chance.uniform(0.2, 2.5)
    if kind == "video-streaming worker":
        workers = gunicorn_workers(app)
        chance.choice(workers).send_signal(signal.SIGKILL)  # the gunicorn master starts another
        return
    if kind == "video-streaming":
        process = app.processes["video-streaming.web"]
    elif kind in ("history worker", "recommendations worker"):
        process = app.processes[f"{kind.split(maxsplit=1)[0]}.worker"]
    elif kind == "mongodb":
        mongo.kill()
        time.sleep(down)
        mongo.start()
        return
    else:
        node.kill()
        time.sleep(down)
        node.start()
        return
    process.stop(signal.SIGKILL)
    time.sleep(down)
    process.start()
