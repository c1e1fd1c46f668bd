"""Test doubles for unit tests (integration tests use real servers)."""

from __future__ import annotations

import threading

from flixtube_common.outbox import RejectedView
from flixtube_common.views import View


class ScriptedTransport:
    """Fails the first `failures` sends; records what it delivered."""

    def __init__(self, failures: int = 0, reject: set[str] | None = None) -> None:
        self.failures = failures
        self.reject = reject or set()
        self.delivered: list[str] = []
        self.connected = False
        self.gate = threading.Event()
        self.gate.set()

    def connect(self) -> None:
        self.connected = True

    def send(self, view: View) -> None:
        self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker gone")
        if view.video_path in self.reject:
            raise RejectedView("no")
        self.delivered.append(view.video_path)

    def poll(self) -> None:
        """Nothing to keep alive."""

    def close(self) -> None:
        self.connected = False


class MemoryStore:
    """A ViewStore stand-in: record() keeps views by viewId, or fails as an unreachable database would."""

    def __init__(self, down: bool = False) -> None:
        self.views: dict[str, View] = {}
        self.down = down

    def record(self, view: View) -> bool:
        from flixtube_common.store import StoreUnavailable

        if self.down:
            raise StoreUnavailable("ServerSelectionTimeoutError: no server")
        if view.view_id in self.views:
            return False
        self.views[view.view_id] = view
        return True

    def ping(self, timeout: float = 0.8) -> bool:
        return not self.down
