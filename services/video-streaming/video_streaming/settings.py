"""video-streaming's settings, read from the environment once at start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flixtube_common import config


@dataclass(frozen=True)
class Settings:
    videos_dir: Path
    messaging: str
    rabbit_url: str | None
    history_url: str
    app_port: int

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
            app_port=config.app_port(env),
        )
