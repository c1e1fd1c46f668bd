"""video-streaming: serves videos over HTTP and announces each playback start as a "viewed" event."""

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # create_app is imported on first use (PEP 562): gunicorn imports this package for its config module
    # (video_streaming.gunicorn_conf) before the app, and the app's modules, with prometheus_client, must
    # come after that config has named the metrics folder (PROMETHEUS_MULTIPROC_DIR).
    if name == "create_app":
        from video_streaming.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
