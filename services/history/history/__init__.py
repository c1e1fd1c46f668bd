"""history: records every "viewed" event and lists them, newest first."""

from history.app import create_app

__all__ = ["create_app"]
