"""The `http` messaging mode: views go to history's `POST /viewed`, as in the original design."""

from __future__ import annotations

import requests

from flixtube_common.outbox import RejectedView
from flixtube_common.views import View

# (connect, read) seconds: history answers 503 within 10 s when its database is down.
TIMEOUT = (2.0, 12.0)


class HistoryPoster:
    """An outbox transport; the viewId in the body makes a retried POST store one view."""

    connected = True  # HTTP has no connection to keep; each send says whether it worked

    def __init__(self, history_url: str) -> None:
        self._url = history_url.rstrip("/") + "/viewed"
        self._session = requests.Session()

    def connect(self) -> None:
        """Nothing to open: each POST stands alone."""

    def send(self, view: View) -> None:
        # view.trace: W3C traceparent, so history's request span continues the playback's trace.
        response = self._session.post(self._url, json=view.to_json(), headers=view.trace, timeout=TIMEOUT)
        if 400 <= response.status_code < 500:
            raise RejectedView(f"history answered {response.status_code}: {response.text[:200]}")
        response.raise_for_status()

    def poll(self) -> None:
        """Nothing to keep alive."""

    def close(self) -> None:
        """Keep the session: its pooled connections are reused by the next POST."""
