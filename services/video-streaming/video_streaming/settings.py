"""video-streaming's settings, read from the environment once at start."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from flixtube_common import config

DEFAULT_OUTBOX_MAX_MIB = 64


@dataclass(frozen=True)
class Settings:
    videos_dir: Path
    messaging: str
    rabbit_url: str | None
    history_url: str
    outbox_dir: Path
    outbox_max_bytes: int

    @classmethod
    def from_env(cls, env: config.Env) -> Settings:
        videos_dir = Path(config.optional(env, "VIDEOS_DIR", "./videos")).resolve()
        if not videos_dir.is_dir():
            raise config.ConfigError(f"VIDEOS_DIR must be an existing folder, got {str(videos_dir)!r}")
        mode = config.messaging_mode(env)
        return cls(
            videos_dir=videos_dir,
            messaging=mode,
            rabbit_url=config.rabbit_url(env, mode),
            history_url=config.url(
                env, "HISTORY_URL", ("http", "https"), example="http://history", default="http://history"
            ),
            outbox_dir=outbox_dir(env),
            outbox_max_bytes=outbox_max_mib(env) * 1024 * 1024,
        )


def outbox_dir(env: config.Env) -> Path:
    """Where views wait for delivery (made if missing); it must be writable, as a volume that survives
    the container on Kubernetes."""
    folder = Path(config.optional(env, "OUTBOX_DIR", "./outbox")).resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise config.ConfigError(
            f"OUTBOX_DIR must be a folder we can make, got {str(folder)!r}: {error}"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise config.ConfigError(f"OUTBOX_DIR must be a writable folder, got {str(folder)!r}")
    return folder


def outbox_max_mib(env: config.Env) -> int:
    raw = config.optional(env, "OUTBOX_MAX_MIB", str(DEFAULT_OUTBOX_MAX_MIB))
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise config.ConfigError(f"OUTBOX_MAX_MIB must be a whole number of MiB, at least 1, got {raw!r}")
    return int(raw)
