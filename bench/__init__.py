"""Benchmarks of FlixTube against reference servers; see bench/README.md."""

import sys
from pathlib import Path

# The venv's editable install of the shared package may point at another checkout of the repository:
# the benchmarks measure this one's, in this process and (through PYTHONPATH) in the services they start.
_SHARED_SRC = str(Path(__file__).resolve().parent.parent / "libs" / "flixtube_common" / "src")
if _SHARED_SRC not in sys.path:
    sys.path.insert(0, _SHARED_SRC)
