"""The front: nginx on PORT in the foreground, its configuration rendered from nginx/nginx.conf.template.

    python -m video_streaming.front        (the Procfile's web: line)

Reads the same settings as the app (a bad one stops it with one line, as the app does), renders the
template with PORT, APP_PORT and VIDEOS_DIR into a folder of its own under the temporary directory,
which is also nginx's prefix (pid file, temporary files), and replaces itself with nginx. No root needed.
In containers the nginx image renders the same template itself (docs/containers.md).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from flixtube_common import config
from video_streaming.settings import Settings

TEMPLATE = Path(__file__).resolve().parent.parent / "nginx" / "nginx.conf.template"
FOLDER_PREFIX = "flixtube-front-"
PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")
# Debian installs nginx in /usr/sbin, which is not on every user's PATH.
SEARCH_PATH = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill every ${NAME} (as envsubst does); nginx's own $variables are lower case and left alone."""
    missing = sorted({name for name in PLACEHOLDER.findall(template) if name not in values})
    if missing:
        raise KeyError(f"no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: values[match[1]], template)


def nginx_argv(executable: str, prefix: Path, conf: Path, *, as_root: bool = False) -> list[str]:
    """nginx in the foreground with `prefix` for its relative paths; startup errors to stderr too.

    Started by root, nginx would run its workers as `nobody`, who may not read the videos or the prefix:
    they run as the user who started the front, as every other process of the Procfile does.
    """
    directives = "daemon off;" + (" user root;" if as_root else "")
    return [executable, "-p", f"{prefix}/", "-c", str(conf), "-e", "stderr", "-g", directives]


def values(env: Mapping[str, str]) -> dict[str, str]:
    """The template's values; raises ConfigError for a bad setting (the app's settings included)."""
    settings = Settings.from_env(env)
    return {
        "PORT": str(config.port(env)),
        "APP_PORT": str(settings.app_port),
        "VIDEOS_DIR": str(settings.videos_dir),
    }


def find_nginx(env: Mapping[str, str]) -> str | None:
    return shutil.which("nginx", path=os.pathsep.join([env.get("PATH", ""), *SEARCH_PATH]))


def sweep(parent: Path, prefix: str, grace: float = 60.0) -> None:
    """Remove the folders of fronts that are gone (exec leaves no one to clean up after nginx)."""
    for folder in parent.glob(f"{prefix}*"):
        with contextlib.suppress(OSError):
            if time.time() - folder.stat().st_mtime > grace and not running(folder / "nginx.pid"):
                shutil.rmtree(folder, ignore_errors=True)


def running(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def main() -> None:
    env = config.environ()
    try:
        filled = values(env)
    except config.ConfigError as error:
        sys.exit(f"Error: {error}")
    nginx = find_nginx(env)
    if nginx is None:
        sys.exit("Error: nginx is not installed (Debian: apt-get install nginx-light)")
    # One folder per user and port: a restart reuses it, and no two fronts share one.
    prefix = Path(tempfile.gettempdir(), f"{FOLDER_PREFIX}{os.getuid()}-{filled['PORT']}")
    sweep(prefix.parent, f"{FOLDER_PREFIX}{os.getuid()}-")
    shutil.rmtree(prefix, ignore_errors=True)
    prefix.mkdir(mode=0o700)
    conf = prefix / "nginx.conf"
    conf.write_text(render(TEMPLATE.read_text(), filled))
    sys.stdout.flush()
    os.execv(nginx, nginx_argv(nginx, prefix, conf, as_root=os.geteuid() == 0))


if __name__ == "__main__":
    main()
