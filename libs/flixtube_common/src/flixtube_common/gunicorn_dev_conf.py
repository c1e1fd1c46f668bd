"""gunicorn settings for the dev loop: `gunicorn -c python:flixtube_common.gunicorn_dev_conf APP`.

The shared production settings, except that each worker loads the app itself and gunicorn restarts the
worker when a loaded source file changes. gunicorn's reloader cannot work with a preloaded app (a new
worker would fork from the master's old code), so preloading is off here, and only here.
"""

from flixtube_common.gunicorn_conf import *  # noqa: F403 - the same settings, then the dev overrides

preload_app = False
reload = True
