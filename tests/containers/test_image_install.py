"""The production image's install step, replayed without Docker: lay out under a temporary folder exactly
the files each production Dockerfile copies (filtered by its .dockerignore), run its pip steps into a
fresh virtualenv there, start its CMD from its WORKDIR with the port set, and get 200 from /healthz;
then the image's HEALTHCHECK command must pass, and each Procfile worker must start (and, in http mode
with nothing to consume, exit 0).

What this cannot replay (users, file ownership, the base image itself) the static tests check instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from .build_files import (
    COMPOSE_FILES,
    REPO,
    SERVICES,
    SERVICES_DIR,
    Stage,
    compose,
    context_files,
    dockerignore,
    env_values,
    exec_form,
    ignore_rules,
    image_process,
    procfile,
    split_flags,
    stages,
    without_flags,
)

START_TIMEOUT = 30.0
# In the image, a folder of the filesystem; here, the same path under the temporary root.
IMAGE_ROOT_DIRS = ("/opt/venv", "/build", "/app")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def runtime_env(service: str) -> dict[str, str]:
    """What each service needs to start with no broker and no database reachable."""
    env = {"VIEWED_MESSAGING": "http"}
    if service in ("history", "recommendations"):
        env["DBHOST"] = f"mongodb://127.0.0.1:{free_port()}"
    return env


class ImageReplay:
    """The filesystem of one production image, rebuilt under `root` from its Dockerfile."""

    def __init__(self, dockerfile: Path, root: Path) -> None:
        self.dockerfile = dockerfile
        self.root = root
        self.rules = ignore_rules(dockerignore(dockerfile))
        self.stages = stages(dockerfile)

    def here(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")

    def rewrite(self, command: str) -> str:
        for directory in IMAGE_ROOT_DIRS:
            command = command.replace(directory, str(self.here(directory)))
        return command

    def build(self) -> None:
        for stage in self.stages:
            self.build_stage(stage)

    def build_stage(self, stage: Stage) -> None:
        workdir = self.root
        for instruction in stage.instructions:
            if instruction.keyword == "WORKDIR":
                workdir = self.here(instruction.args)
                workdir.mkdir(parents=True, exist_ok=True)
            elif instruction.keyword == "COPY":
                self.copy(instruction.args, workdir)
            elif instruction.keyword == "RUN" and "pip" in instruction.args:
                self.run(instruction.args, workdir)
            # Other RUN steps create the user; ENV, USER, EXPOSE, CMD are read when the CMD starts.

    def copy(self, args: str, workdir: Path) -> None:
        flags, (*sources, dest) = split_flags(args)
        if "from" in flags:  # one shared root: what an earlier stage built is already in place
            assert sources == [dest], f"COPY {args}: expected the same path in both stages"
            return
        target = self.here(dest) if dest.startswith("/") else workdir / dest
        for source in sources:
            for file in context_files(source, self.rules):
                inside = file.relative_to(REPO / source) if (REPO / source).is_dir() else Path(file.name)
                destination = target / inside if (REPO / source).is_dir() or dest.endswith("/") else target
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, destination)

    def run(self, args: str, workdir: Path) -> None:
        _mounts, shell_command = without_flags(args)
        # `python` is the base image's interpreter; here, this environment's Python 3.11 (with pip).
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        command = self.rewrite(shell_command)
        result = subprocess.run(
            ["bash", "-c", command], cwd=workdir, env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"RUN {command}\n{result.stdout}\n{result.stderr}"

    def environment(self, extra: dict[str, str]) -> dict[str, str]:
        """The runtime stage's ENV (its PATH leading to the replayed venv), then `extra`."""
        values = {key: self.rewrite(value) for key, value in env_values(self.stages[-1]).items()}
        path = values.pop("PATH").replace("$PATH", "/usr/bin:/bin")
        return {"HOME": str(self.root), "PATH": path, "LANG": "C.UTF-8", **values, **extra}

    def argv(self, command: list[str], env: dict[str, str]) -> list[str]:
        executable = shutil.which(command[0], path=env["PATH"])
        assert executable and executable.startswith(str(self.root)), f"{command[0]} is not in the image"
        return [executable, *command[1:]]

    def workdir(self) -> Path:
        return self.here(self.stages[-1].last("WORKDIR").args)

    def start(self, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                self.argv(command, env),
                cwd=self.workdir(),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def run_to_end(self, command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(command, env),
            cwd=self.workdir(),
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )

    def healthcheck(self) -> list[str]:
        _options, command = self.stages[-1].last("HEALTHCHECK").args.split(" CMD ", 1)
        return json.loads(command)


def wait_for_healthz(port: int, process: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the CMD exited with {process.returncode}:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as error:
            error.close()
            return error.code
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError(f"no answer from /healthz within {START_TIMEOUT} s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[ImageReplay]]]:
    """Every production image, replayed side by side (pip waits on the
    network most of the time); a failed build fails only its own service's test."""

    def build(service: str) -> ImageReplay:
        image = ImageReplay(SERVICES_DIR / service / "Dockerfile", tmp_path_factory.mktemp(service) / "image")
        image.build()
        return image

    with ThreadPoolExecutor(max_workers=len(SERVICES)) as pool:
        yield {service: pool.submit(build, service) for service in SERVICES}


@pytest.mark.parametrize("service", SERVICES)
def test_the_production_image_installs_and_answers_healthz(
    service: str, images: dict[str, Future[ImageReplay]], tmp_path: Path
) -> None:
    image = images[service].result()
    ports = {"PORT": free_port(), "APP_PORT": free_port()}
    env = image.environment({**runtime_env(service), **{k: str(v) for k, v in ports.items()}})
    log = tmp_path / "service.log"
    process = image.start(exec_form(image.stages[-1].last("CMD")), env, log)
    # An image behind a front (video-streaming's app) listens on APP_PORT; nginx would be on PORT.
    listens = ports["APP_PORT" if image_process(service) == "app" else "PORT"]
    try:
        assert wait_for_healthz(listens, process, log) == 200
        check = image.run_to_end(image.healthcheck(), env)
        assert check.returncode == 0, f"the image's HEALTHCHECK fails:\n{check.stderr}"
    finally:
        stop(process)


def other_processes(service: str) -> dict[str, list[str]]:
    """Procfile lines besides the image's own and the front (the web: line of a service behind one)."""
    own = {image_process(service), "web"}
    return {name: line for name, line in procfile(service).items() if name not in own}


@pytest.mark.parametrize("service", [s for s in SERVICES if other_processes(s)])
def test_the_procfile_worker_runs_from_the_image(
    service: str, images: dict[str, Future[ImageReplay]]
) -> None:
    """In http mode a consumer has nothing to do and exits 0 (the contract): it imports and starts."""
    image = images[service].result()
    env = image.environment(runtime_env(service))
    for name, command in other_processes(service).items():
        result = image.run_to_end(command, env)
        assert result.returncode == 0, f"{name}: exit {result.returncode}\n{result.stdout}{result.stderr}"


def envsubst(template: str, env: dict[str, str]) -> str:
    """What the nginx image's entrypoint does with /etc/nginx/templates/*.template: envsubst over every
    variable defined in the container (nginx's own $variables are not among them)."""
    defined = " ".join(f"${{{name}}}" for name in env)
    done = subprocess.run(
        ["envsubst", defined], input=template, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.mark.parametrize("compose_file", COMPOSE_FILES)
def test_the_front_container_serves_the_image_videos_through_the_app(
    compose_file: str, images: dict[str, Future[ImageReplay]], tmp_path: Path
) -> None:
    """The front container, replayed: the template rendered as the nginx image renders it, with the
    compose file's environment (the videos at the image's path), run by this machine's nginx with the
    container's command, in front of the replayed production app: a range comes back byte for byte."""
    image = images["video-streaming"].result()
    container = compose(compose_file)["services"]["video-streaming"]
    ports = {"PORT": str(free_port()), "APP_PORT": str(free_port())}
    front_env = {**container["environment"], **ports, "HOSTNAME": "front", "HOME": "/"}
    front_env["VIDEOS_DIR"] = image.rewrite(front_env["VIDEOS_DIR"])
    rendered = envsubst((REPO / "services/video-streaming/nginx/nginx.conf.template").read_text(), front_env)
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    (prefix / "nginx.conf").write_text(rendered)
    nginx_command = [w.replace("/tmp/", f"{prefix}/") for w in container["command"]]
    nginx_command = [
        w.replace("daemon off;", "daemon off; user root;") if os.geteuid() == 0 else w for w in nginx_command
    ]
    app_env = image.environment({**runtime_env("video-streaming"), **ports})
    app = image.start(exec_form(image.stages[-1].last("CMD")), app_env, tmp_path / "app.log")
    with (tmp_path / "nginx.log").open("wb") as log:
        nginx = subprocess.Popen(
            [shutil.which("nginx", path="/usr/sbin:/usr/bin") or "nginx", *nginx_command[1:]],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        assert wait_for_healthz(int(ports["APP_PORT"]), app, tmp_path / "app.log") == 200
        assert wait_for_healthz(int(ports["PORT"]), nginx, tmp_path / "nginx.log") == 200
        request = urllib.request.Request(
            f"http://127.0.0.1:{ports['PORT']}/video?path=sample.mp4", headers={"Range": "bytes=100-199"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 206
            assert response.read() == (image.workdir() / "videos/sample.mp4").read_bytes()[100:200]
            assert response.headers["Server"] == "nginx"
    finally:
        stop(nginx)
        stop(app)
