"""recommendations' consumer process: `python -m recommendations.worker` (the Procfile's `worker:` line)."""

import sys

from flixtube_common.subscriber import run_worker
from recommendations.app import SERVICE, load_settings

if __name__ == "__main__":
    sys.exit(run_worker(SERVICE, load_settings))
