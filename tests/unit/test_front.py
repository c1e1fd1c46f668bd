"""The front's launcher: the template rendered as envsubst would, and the folders of gone fronts swept."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from video_streaming import front

VALUES = {"PORT": "4000", "APP_PORT": "4100", "VIDEOS_DIR": "/srv/videos"}


def test_the_template_gets_every_value_and_keeps_nginx_variables() -> None:
    rendered = front.render(front.TEMPLATE.read_text(), VALUES)
    assert "${" not in rendered
    assert "listen 4000;" in rendered and "server 127.0.0.1:4100;" in rendered
    assert rendered.count("alias /srv/videos/;") == 2
    assert rendered.count("internal;") == 2
    assert "$uri" in rendered and "$status" in rendered


def test_a_placeholder_without_a_value_is_an_error() -> None:
    with pytest.raises(KeyError, match="APP_PORT"):
        front.render("listen ${PORT}; ${APP_PORT}", {"PORT": "1"})


def test_a_bad_setting_is_refused_before_nginx_starts(tmp_path: Path) -> None:
    env = {"VIDEOS_DIR": str(tmp_path), "VIEWED_MESSAGING": "http", "PORT": "4000", "APP_PORT": "4000"}
    with pytest.raises(front.config.ConfigError, match="APP_PORT"):
        front.values(env)


def test_folders_of_gone_fronts_are_swept(tmp_path: Path) -> None:
    gone, alive, fresh = (tmp_path / f"flixtube-front-0-{port}" for port in (1, 2, 3))
    for folder in (gone, alive, fresh):
        folder.mkdir()
    (gone / "nginx.pid").write_text("999999999")
    (alive / "nginx.pid").write_text(str(os.getpid()))
    old = time.time() - 3600
    for folder in (gone, alive):
        os.utime(folder, (old, old))
    front.sweep(tmp_path, "flixtube-front-0-")
    assert not gone.exists()
    assert alive.exists() and fresh.exists()  # still running; just made (no pid file yet)
