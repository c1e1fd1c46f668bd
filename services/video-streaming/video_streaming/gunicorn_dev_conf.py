"""video-streaming's app in the dev loop: the shared dev settings (reload), on loopback APP_PORT."""

from flixtube_common.gunicorn_dev_conf import *  # noqa: F403 - reload on, preload off
from video_streaming.gunicorn_conf import bind  # noqa: F401 - read by gunicorn
