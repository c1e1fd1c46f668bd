"""gunicorn settings of video-streaming's app: the shared ones, but listening on loopback APP_PORT only.

Clients reach the front (nginx on PORT, the Procfile's web: line), which asks this app about each request.
"""

from __future__ import annotations

import os
import sys

# Private names: gunicorn reads every public module name as a setting.
from flixtube_common import config as _config
from flixtube_common.gunicorn_conf import *  # noqa: F403 - the shared settings, then the address

try:
    bind = [f"127.0.0.1:{_config.app_port(os.environ)}"]
except _config.ConfigError as error:
    sys.exit(f"Error: {error}")
