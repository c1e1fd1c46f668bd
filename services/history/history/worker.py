"""history's consumer process: `python -m history.worker` (the Procfile's `worker:` line)."""

import sys

from flixtube_common.subscriber import run_worker
from history.app import SERVICE, load_settings

if __name__ == "__main__":
    sys.exit(run_worker(SERVICE, load_settings))
