"""video-streaming: serves videos over HTTP and announces each playback start as a "viewed" event."""

from video_streaming.app import create_app

__all__ = ["create_app"]
