"""video-streaming's front in its pod: nginx (the unprivileged official image) beside the app.

nginx listens on the port clients use and asks the app, on loopback APP_PORT in the same pod, about every
request; the app answers X-Accel-Redirect and nginx sends the file from the videos volume. The volume is
an emptyDir filled from the app image's videos by an init container, and shared read-only by both. The
nginx configuration is services/video-streaming/nginx/nginx.conf.template in a ConfigMap, rendered by the
image's entrypoint (envsubst) into /tmp at start, exactly as compose does it.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from infra import kube

core = k8s.core.v1

IMAGE = "nginxinc/nginx-unprivileged:1.29.3-alpine"
"""The same pin as compose.yaml and compose.prod.yaml (tests/containers checks it)."""
APP_PORT = 8081
VIDEOS_DIR = "/videos"
TEMPLATE = Path(__file__).resolve().parent.parent / "services/video-streaming/nginx/nginx.conf.template"
TEMPLATES_DIR = "/etc/nginx/templates"
ARGS = ["nginx", "-p", "/tmp/", "-c", "/tmp/nginx.conf", "-e", "stderr", "-g", "daemon off;"]
"""The image's CMD replaced, its entrypoint kept (it renders the template): the compose command."""
RESOURCES = kube.Resources("50m", "32Mi", "500m", "128Mi")
INIT_RESOURCES = kube.Resources("50m", "32Mi", "200m", "64Mi")

CONFIG_VOLUME = "front-config"
FRONT_TMP_VOLUME = "front-tmp"
VIDEOS_VOLUME = "videos"
COPY_VIDEOS = [
    "python",
    "-c",
    # Symlinks stay symlinks: the app judges where they lead, nginx follows none.
    f"import shutil; shutil.copytree('/app/videos', {VIDEOS_DIR!r}, symlinks=True, dirs_exist_ok=True)",
]


def app_probe(path: str) -> list[str]:
    """The app listens on loopback only: the kubelet cannot reach it, so the probe runs inside."""
    url = f"http://127.0.0.1:{APP_PORT}{path}"
    return ["python", "-c", f"import urllib.request; urllib.request.urlopen({url!r}, timeout=3)"]


def config_map(name: str, labels: dict[str, str], opts: pulumi.ResourceOptions) -> core.ConfigMap:
    return core.ConfigMap(
        f"{name}-front",
        metadata=kube.object_meta(f"{name}-front", labels),
        data={TEMPLATE.name: TEMPLATE.read_text()},
        opts=opts,
    )


def volumes(config_map_name: pulumi.Input[str]) -> list[core.VolumeArgs]:
    return [
        kube.empty_dir(FRONT_TMP_VOLUME),
        kube.empty_dir(VIDEOS_VOLUME, size="1Gi"),
        core.VolumeArgs(name=CONFIG_VOLUME, config_map=core.ConfigMapVolumeSourceArgs(name=config_map_name)),
    ]


def web_container(http_port: int) -> core.ContainerArgs:
    """nginx on the pod's public port; ready when the app behind it is (/readyz goes through)."""
    return core.ContainerArgs(
        name="web",
        image=IMAGE,
        image_pull_policy=kube.PULL_POLICY,
        args=ARGS,
        ports=[core.ContainerPortArgs(name="http", container_port=http_port, protocol="TCP")],
        env=kube.literal_env(
            {
                "PORT": str(http_port),
                "APP_PORT": str(APP_PORT),
                "VIDEOS_DIR": VIDEOS_DIR,
                "NGINX_ENVSUBST_OUTPUT_DIR": "/tmp",
            }
        ),
        resources=RESOURCES.args(),
        # The image runs under any uid (it writes only to /tmp): the pod's, a high one, not its own 101.
        security_context=kube.container_security(kube.APP_UID),
        readiness_probe=kube.http_probe("/readyz", "http", period=10, failures=3),
        liveness_probe=kube.http_probe("/nginx-healthz", "http", period=20, failures=3),
        volume_mounts=[
            kube.mount(FRONT_TMP_VOLUME, "/tmp"),
            core.VolumeMountArgs(name=CONFIG_VOLUME, mount_path=TEMPLATES_DIR, read_only=True),
            core.VolumeMountArgs(name=VIDEOS_VOLUME, mount_path=VIDEOS_DIR, read_only=True),
        ],
    )


def app_env() -> list[core.EnvVarArgs]:
    return kube.literal_env({"APP_PORT": str(APP_PORT), "VIDEOS_DIR": VIDEOS_DIR})


def app_mounts() -> list[core.VolumeMountArgs]:
    return [core.VolumeMountArgs(name=VIDEOS_VOLUME, mount_path=VIDEOS_DIR, read_only=True)]


def videos_init_container(image: pulumi.Input[str], uid: int) -> core.ContainerArgs:
    """Copies the app image's videos into the shared volume before either container starts."""
    return core.ContainerArgs(
        name="videos",
        image=image,
        image_pull_policy=kube.PULL_POLICY,
        command=COPY_VIDEOS,
        resources=INIT_RESOURCES.args(),
        security_context=kube.container_security(uid),
        volume_mounts=[kube.mount(VIDEOS_VOLUME, VIDEOS_DIR)],
    )
