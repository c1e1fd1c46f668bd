"""recommendations: a second subscriber to "viewed" that ranks videos by their number of views."""

from recommendations.app import create_app

__all__ = ["create_app"]
