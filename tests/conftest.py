"""Fixtures that start real servers; each test gets fresh names so tests never collide."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devtools.procfile import ROOT, SERVICES
from tests.harness import FlixTube, MongoServer, rabbit_vhost

SAMPLE = ROOT / "services" / "video-streaming" / "videos" / "sample.mp4"


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An external MongoDB (FLIXTUBE_TEST_MONGO_URL, e.g. the `mongo` image in CI) or a local nx-27017."""
    external = os.environ.get("FLIXTUBE_TEST_MONGO_URL")
    if external:
        yield external
        return
    server = MongoServer(tmp_path_factory.mktemp("mongo") / "data")
    server.start()
    yield server.url
    server.kill()


@pytest.fixture
def mongo_server(tmp_path: Path) -> Iterator[MongoServer]:
    """A server of the test's own, for tests that kill and restart it."""
    server = MongoServer(tmp_path / "mongo-data")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def rabbit_url() -> Iterator[str]:
    with rabbit_vhost() as url:
        yield url


def make_videos(tmp_path: Path) -> Path:
    """A videos folder: the sample, a larger file of random bytes, a subfolder, and a symlink out."""
    folder = tmp_path / "videos"
    (folder / "more").mkdir(parents=True)
    shutil.copy(SAMPLE, folder / "a-sample.mp4")
    (folder / "big.mp4").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (folder / "more" / "clip.webm").write_bytes(os.urandom(4096))
    secret = tmp_path / "secret.txt"
    secret.write_text("not a video")
    (folder / "escape.mp4").symlink_to(secret)
    return folder


@pytest.fixture
def videos_dir(tmp_path: Path) -> Path:
    return make_videos(tmp_path)


StartFlixTube = Callable[..., FlixTube]


@pytest.fixture
def start_flixtube(
    request: pytest.FixtureRequest, tmp_path: Path, mongo_url: str, rabbit_url: str, videos_dir: Path
) -> Iterator[StartFlixTube]:
    """Start FlixTube in a messaging mode; stopped after the test, its logs printed if the test failed."""
    started: list[FlixTube] = []

    def start(
        mode: str,
        services: tuple[str, ...] = SERVICES,
        db_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> FlixTube:
        app = FlixTube(mode, tmp_path, db_url or mongo_url, rabbit_url, videos_dir, env or {})
        started.append(app)
        return app.start(services)

    yield start
    for app in started:
        app.stop()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(app.logs())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed; and fail
    a skipped test: here a skip can only mean something the suite needs is missing, a gap to fix."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, which this suite does not allow: {report.longrepr}"
    setattr(item, f"rep_{report.when}", report)
    return report
