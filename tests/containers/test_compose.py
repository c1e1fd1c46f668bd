"""The compose files: valid per the Compose specification, and consistent with the contract, the
Dockerfiles, the Procfiles and the Pulumi program."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from video_streaming import front

from .build_files import (
    COMPOSE_FILES,
    FRONT_IMAGE,
    IMAGE_PORT,
    REPO,
    SERVICES,
    SERVICES_DIR,
    compose,
    env_values,
    image_process,
    is_front,
    own_services,
    procfile,
    stages,
)

# The variables of ../shared/CONTRACT.md, and the documented extensions the shared package reads.
CONTRACT_VARIABLES = {"PORT", "RABBIT", "VIEWED_MESSAGING", "HISTORY_URL", "VIDEOS_DIR", "DBHOST", "DBNAME"}
EXTENSION_VARIABLES = {"VIEWED_QUEUE", "WEB_CONCURRENCY", "GUNICORN_THREADS", "HEARTBEAT_FILE", "APP_PORT"}
# The nginx image's own setting: where its entrypoint renders /etc/nginx/templates/*.template.
FRONT_VARIABLES = {"NGINX_ENVSUBST_OUTPUT_DIR"}
FRONT_TEMPLATE = "services/video-streaming/nginx/nginx.conf.template"
MESSAGING_SWITCH = "${VIEWED_MESSAGING:-fanout}"
BACKING_SERVICES = ("rabbit", "db")
DEV_PORTS = {"video-streaming": 4000, "history": 4001, "recommendations": 4002}
# Third-party images, as the compose files and the Pulumi program must both name them.
IMAGE_PATTERN = re.compile(r"\b(rabbitmq|mongo|nginxinc/nginx-unprivileged):([\w][\w.-]*)")


def check_jsonschema() -> str:
    found = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert found, "check-jsonschema is missing: install requirements/checks.txt into .venv"
    return found


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    command = [check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(path)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "write environment as a mapping"
    return env


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_file_follows_the_compose_specification(name: str) -> None:
    result = validate(REPO / name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_specification_check_rejects_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  web:\n    image: x:1\n    depends_on: {db: {condition: when_ready}}\n")
    assert validate(bad).returncode != 0


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_environment_names_are_contract_names(name: str) -> None:
    document = compose(name)
    for container in own_services(document):
        allowed = CONTRACT_VARIABLES | EXTENSION_VARIABLES
        allowed |= FRONT_VARIABLES if is_front(document["services"][container]) else set()
        unknown = set(environment(document["services"][container])) - allowed
        assert not unknown, f"{name} {container}: {sorted(unknown)} are not contract variables"


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_one_variable_switches_the_messaging_mode(name: str) -> None:
    document = compose(name)
    for container in own_services(document):
        if not is_front(document["services"][container]):  # nginx sends no view
            assert environment(document["services"][container]).get("VIEWED_MESSAGING") == MESSAGING_SWITCH


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_every_procfile_process_runs_in_a_container_with_its_command(name: str) -> None:
    document = compose(name)
    running = own_services(document)
    for service in SERVICES:
        assert {p for s, p in running.values() if s == service} == set(procfile(service)), service
    for container, (service, process) in running.items():
        command = document["services"][container].get("command")
        expected = None if process == image_process(service) else procfile(service)[process]  # the CMD
        if is_front(document["services"][container]):  # the same nginx command as the web: line's
            expected = front.nginx_argv("nginx", Path("/tmp"), Path("/tmp/nginx.conf"))
        assert command == expected, f"{name} {container}"


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_services_start_when_rabbit_and_db_are_healthy(name: str) -> None:
    services = compose(name)["services"]
    for backing in BACKING_SERVICES:
        assert "test" in services[backing]["healthcheck"], f"{backing} needs a healthcheck"
    for container in own_services(compose(name)):
        if is_front(services[container]):
            continue  # nginx needs no broker; it answers 503 until its app is up
        needs = ["rabbit", "db"] if "DBHOST" in environment(services[container]) else ["rabbit"]
        depends = services[container].get("depends_on", {})
        assert all(depends.get(b, {}).get("condition") == "service_healthy" for b in needs), container


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_third_party_images_are_pinned(name: str) -> None:
    services = compose(name)["services"]
    for backing in BACKING_SERVICES:
        image = services[backing]["image"]
        tag = image.partition(":")[2]
        assert tag and tag != "latest" and "$" not in image, f"{backing}: image {image!r} is not pinned"


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_data_lives_in_named_volumes(name: str) -> None:
    document = compose(name)
    for backing in BACKING_SERVICES:
        mounts = [v.split(":")[0] for v in document["services"][backing]["volumes"]]
        assert mounts and all(m in document["volumes"] for m in mounts), backing


def test_dev_ports() -> None:
    services = compose("compose.yaml")["services"]
    for service, port in DEV_PORTS.items():
        assert services[service]["ports"] == [f"{port}:{IMAGE_PORT}"]
    assert "15672:15672" in services["rabbit"]["ports"]


def test_dev_watch_syncs_code_and_rebuilds_on_requirements() -> None:
    document = compose("compose.yaml")
    for container, (service, _process) in own_services(document).items():
        if is_front(document["services"][container]):
            continue  # no build: the template is a config, read at each start
        watch = document["services"][container]["develop"]["watch"]
        actions = {(rule["path"], rule["action"]) for rule in watch}
        assert any(path.startswith(f"services/{service}/") and a.startswith("sync") for path, a in actions)
        assert (f"services/{service}/requirements.txt", "rebuild") in actions, container
        for rule in watch:
            assert (REPO / rule["path"]).exists(), f"{container}: watch path {rule['path']} does not exist"


def test_dev_mounts_the_videos() -> None:
    services = compose("compose.yaml")["services"]
    for container in ("video-streaming", "video-streaming-app"):
        assert "./services/video-streaming/videos:/app/videos:ro" in services[container]["volumes"]


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_the_front_is_nginx_with_the_template_in_the_app_network_namespace(name: str) -> None:
    """As in the Kubernetes pod: nginx renders the front's template on the port clients use, and the
    app listens on loopback in the same network namespace, on the APP_PORT its image sets."""
    document = compose(name)
    nginx, app = document["services"]["video-streaming"], document["services"]["video-streaming-app"]
    assert nginx["image"] == FRONT_IMAGE
    assert document["configs"][nginx["configs"][0]["source"]]["file"] == f"./{FRONT_TEMPLATE}"
    assert nginx["configs"][0]["target"] == "/etc/nginx/templates/nginx.conf.template"
    env = environment(nginx)
    assert env["NGINX_ENVSUBST_OUTPUT_DIR"] == "/tmp"
    assert app["network_mode"] == "service:video-streaming"
    dockerfile = "Dockerfile-dev" if name == "compose.yaml" else "Dockerfile"
    image_env = env_values(stages(SERVICES_DIR / "video-streaming" / dockerfile)[-1])
    assert env["PORT"] == image_env["PORT"] == str(IMAGE_PORT)
    assert env["APP_PORT"] == image_env["APP_PORT"]
    videos = {v.split(":")[0] for v in nginx["volumes"]} & {v.split(":")[0] for v in app["volumes"]}
    assert [v for v in nginx["volumes"] if v.split(":")[:2] == [*videos, env["VIDEOS_DIR"]]], "no videos"
    assert "/nginx-healthz" in " ".join(nginx["healthcheck"]["test"])


def test_prod_publishes_only_video_streaming() -> None:
    services = compose("compose.prod.yaml")["services"]
    assert [name for name, s in services.items() if "ports" in s] == ["video-streaming"]
    assert [p.rsplit(":", 1)[1] for p in services["video-streaming"]["ports"]] == [str(IMAGE_PORT)]


def test_prod_has_no_bind_mounts_and_always_a_restart_policy() -> None:
    document = compose("compose.prod.yaml")
    for name, service in document["services"].items():
        assert service.get("restart") in ("unless-stopped", "always", "on-failure"), name
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in document["volumes"], f"{name}: {volume} is a bind mount"


def test_prod_credentials_come_from_the_env_file() -> None:
    text = (REPO / "compose.prod.yaml").read_text()
    assert "guest" not in text
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = (REPO / ".env.example").read_text()
    defined = set(re.findall(r"^(\w+)=", example, re.MULTILINE))
    assert required and required <= defined, f".env.example lacks {sorted(required - defined)}"
    assert ".env" in (REPO / ".gitignore").read_text().split()


def test_only_the_dev_file_uses_the_local_guest_login() -> None:
    env = environment(compose("compose.yaml")["services"]["history"])
    assert env["RABBIT"] == "amqp://guest:guest@rabbit:5672"
    assert env["DBHOST"] == "mongodb://db:27017"


def test_prod_mongodb_url_authenticates_against_admin() -> None:
    document = compose("compose.prod.yaml")
    for container in own_services(document):
        dbhost = environment(document["services"][container]).get("DBHOST")
        assert dbhost is None or dbhost.endswith("?authSource=admin"), container


def compose_images() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for name in COMPOSE_FILES:
        for match in IMAGE_PATTERN.finditer((REPO / name).read_text()):
            found.setdefault(match[1], set()).add(match[0])
    return found


def pulumi_images() -> dict[str, set[str]]:
    """Every `rabbitmq:<tag>` / `mongo:<tag>` string in the Pulumi program and its stack settings."""
    files = [*REPO.glob("infra/**/*.py"), *REPO.glob("Pulumi*.yaml")]
    found: dict[str, set[str]] = {}
    for path in files:
        for match in IMAGE_PATTERN.finditer(path.read_text()):
            found.setdefault(match[1], set()).add(match[0])
    return found


def test_compose_files_agree_on_third_party_images() -> None:
    images = compose_images()
    assert set(images) == {"rabbitmq", "mongo", "nginxinc/nginx-unprivileged"}
    assert all(len(tags) == 1 for tags in images.values()), images


def test_compose_and_pulumi_use_the_same_images() -> None:
    assert pulumi_images() == compose_images(), "compose and the Pulumi program name different images"
