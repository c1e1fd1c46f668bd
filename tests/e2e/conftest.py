"""The whole app, started the way `make run` starts it, and a real browser to use it with.

Every Procfile line runs through `devtools.procfile.start` on free ports, in `fanout` mode against
the local RabbitMQ (in a fresh vhost) and a fresh nx-27017, serving the repository's sample videos:
the tests see what a person sees after `make run`. Everything is torn down at the end; process output
stays in `test-results/e2e-logs/` for when something fails.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from devtools.procfile import (
    LOCAL_RABBIT,
    ROOT,
    SERVICES,
    free_port,
    rabbit_reachable,
    read_procfile,
    stop,
    wait_for_http,
)
from tests.e2e.stack import TIMEOUT_MS, MakeContext, RunningApp, start_logged
from tests.harness import MongoServer, rabbit_vhost, vhost_of

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RESULTS = ROOT / "test-results"
LOGS = RESULTS / "e2e-logs"


@pytest.fixture(scope="session")
def rabbit() -> Iterator[str]:
    """The URL of a fresh vhost on the local broker, deleted afterwards with everything declared in it."""
    if not rabbit_reachable():
        pytest.fail(f"RabbitMQ does not answer at {LOCAL_RABBIT} (scripts/setup starts it)")
    with rabbit_vhost() as url:
        yield url


@pytest.fixture(scope="session")
def logs() -> Path:
    """Where every started process writes its output, emptied at the start of the session."""
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True)
    return LOGS


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = MongoServer(tmp_path_factory.mktemp("mongo") / "data")
    server.start()
    yield server.url
    server.kill()


@pytest.fixture(scope="session")
def app(rabbit: str, db_url: str, logs: Path) -> Iterator[RunningApp]:
    """Every Procfile line of every service, as `make run` starts them (in fanout mode)."""
    ports = {service: free_port() for service in SERVICES}
    url = {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}
    common = {
        "VIEWED_MESSAGING": "fanout",
        "RABBIT": rabbit,
        "DBHOST": db_url,
        "HISTORY_URL": url["history"],
        "WEB_CONCURRENCY": "1",
        "OUTBOX_DIR": str(logs / "outbox"),
    }
    processes = []
    try:
        for service in SERVICES:
            for kind in read_procfile(service):
                env = {**common, "PORT": str(ports[service])}
                processes.append(start_logged(service, kind, env, logs))
        for base in url.values():
            wait_for_http(f"{base}/readyz", timeout=60)
        yield RunningApp(
            video_streaming=url["video-streaming"],
            history=url["history"],
            recommendations=url["recommendations"],
            vhost=vhost_of(rabbit),
            videos_dir=ROOT / "services/video-streaming/videos",
        )
    finally:
        for process in processes:
            stop(process)


@pytest.fixture
def lone_player(app: RunningApp, tmp_path: Path, logs: Path) -> Iterator[tuple[str, Path]]:
    """A second video-streaming (web line only, `http` mode) serving an empty folder of the test's own."""
    videos = tmp_path / "videos"
    videos.mkdir()
    port = free_port()
    env = {
        "PORT": str(port),
        "VIEWED_MESSAGING": "http",
        "HISTORY_URL": app.history,
        "VIDEOS_DIR": str(videos),
        "OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    process = start_logged("video-streaming", "web", env, logs)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/readyz", timeout=60)
        yield f"http://127.0.0.1:{port}", videos
    finally:
        stop(process)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM} (scripts/setup installs Debian's chromium)")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def make_context(browser: Browser) -> Iterator[MakeContext]:
    """Fresh browser contexts (`browser.new_context` options), closed after the test."""
    made: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture
def context(make_context: MakeContext) -> BrowserContext:
    return make_context(viewport={"width": 960, "height": 720})


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page that must get through its test without script errors or console errors (e.g. CSP)."""
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    yield page
    assert not problems, problems


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """This test's own folder under test-results/, for screenshots."""
    folder = RESULTS / re.sub(r"[^\w.-]+", "-", request.node.nodeid).strip("-")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
