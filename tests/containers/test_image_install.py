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
    REPO,
    SERVICES,
    SERVICES_DIR,
    Stage,
    context_files,
    dockerignore,
    env_values,
    exec_form,
    ignore_rules,
    procfile,
    service_code_is_here,
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
    """Every production image with its service code here, replayed side by side (pip waits on the
    network most of the time); a failed build fails only its own service's test."""

    def build(service: str) -> ImageReplay:
        image = ImageReplay(SERVICES_DIR / service / "Dockerfile", tmp_path_factory.mktemp(service) / "image")
        image.build()
        return image

    with ThreadPoolExecutor(max_workers=len(SERVICES)) as pool:
        yield {service: pool.submit(build, service) for service in SERVICES if service_code_is_here(service)}


@pytest.mark.parametrize("service", SERVICES)
def test_the_production_image_installs_and_answers_healthz(
    service: str, images: dict[str, Future[ImageReplay]], tmp_path: Path
) -> None:
    if service not in images:
        pytest.skip(f"services/{service} has no code in this checkout yet")
    image = images[service].result()
    port = free_port()
    env = image.environment({**runtime_env(service), "PORT": str(port)})
    log = tmp_path / "service.log"
    process = image.start(exec_form(image.stages[-1].last("CMD")), env, log)
    try:
        assert wait_for_healthz(port, process, log) == 200
        check = image.run_to_end(image.healthcheck(), env)
        assert check.returncode == 0, f"the image's HEALTHCHECK fails:\n{check.stderr}"
    finally:
        stop(process)


@pytest.mark.parametrize("service", [s for s in SERVICES if set(procfile(s)) != {"web"}])
def test_the_procfile_worker_runs_from_the_image(
    service: str, images: dict[str, Future[ImageReplay]]
) -> None:
    """In http mode a consumer has nothing to do and exits 0 (the contract): it imports and starts."""
    workers = {name: line for name, line in procfile(service).items() if name != "web"}
    if service not in images:
        pytest.skip(f"services/{service} has no code in this checkout yet")
    image = images[service].result()
    env = image.environment(runtime_env(service))
    for name, command in workers.items():
        result = image.run_to_end(command, env)
        assert result.returncode == 0, f"{name}: exit {result.returncode}\n{result.stdout}{result.stderr}"
