"""Views leave the request path through a durable outbox on disk and one background thread per process.

`put` writes the view to this process's file in OUTBOX_DIR (a `Spool`) before the request that caused it
returns; the thread delivers the files' views in order and deletes them only once the transport has
them (the broker's confirm, or history's 200). A killed process loses nothing: its file is adopted and
delivered by the next process that starts, or by a sibling worker. The thread owns the transport (a
pika connection belongs to one thread), so requests never wait for the broker or for history. While the
transport is down, views wait on disk and go out once it is back, retried with capped backoff for as
long as it takes; a full outbox (the disk budget used up) refuses the view, logged as an error and
counted, and the stream goes on.

A transport that can carry several views at once (`send_many`, e.g. publishing a batch and waiting for
all its confirms together) gets what is waiting, up to `batch_size` views. After a batch of several
views that was not full, the thread rests 50 ms, so a busy process sends fewer, larger batches (less
work for it and for the broker), while views that come one at a time still leave at once. A failed
batch is retried whole (delivery is at least once, and the viewId makes a repeat harmless).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from typing import Protocol, cast

from flixtube_common import metrics, tracing
from flixtube_common.backoff import Backoff
from flixtube_common.logs import event
from flixtube_common.spool import Spool
from flixtube_common.views import View

LOGGER = logging.getLogger(__name__)

ADOPT_EVERY = 30.0  # seconds between looks for the files of processes that are gone


class RejectedView(Exception):
    """The receiver refused this view for good; retrying cannot help."""


class Transport(Protocol):
    """Carries views to their recipients; every method is called from the outbox thread only."""

    @property
    def connected(self) -> bool: ...

    def connect(self) -> None: ...

    def send(self, view: View) -> None: ...

    def poll(self) -> None: ...

    def close(self) -> None: ...


class BatchTransport(Transport, Protocol):
    def send_many(self, views: list[View]) -> None:
        """Deliver every view or raise; a batch that raised is sent again whole."""


class Outbox:
    def __init__(
        self,
        transport: Transport,
        spool: Spool,
        backoff: Backoff | None = None,
        idle_tick: float = 1.0,
        *,
        batch_size: int = 100,
        linger: float = 0.05,
    ) -> None:
        self.transport = transport
        self.spool = spool
        self._backoff = backoff or Backoff()
        self._idle_tick = idle_tick
        self._batch_size = batch_size if hasattr(transport, "send_many") else 1
        self._linger = linger
        self._arrived = threading.Event()  # set by put: the thread has work
        self._wake = threading.Event()  # set by close: every wait ends now
        self._stop_by: float | None = None
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._adopted_at = 0.0
        self.sent = 0
        self.dropped = 0
        self.refused = 0

    def start(self) -> None:
        """Start the sender thread in this process (again after a fork, where threads do not survive)."""
        if self._pid == os.getpid() and self._thread and self._thread.is_alive():
            return
        self._pid = os.getpid()
        self._stop_by = None
        self._wake.clear()
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def put(self, view: View) -> bool:
        """Keep the view on disk for delivery; False if the outbox is full (logged and counted)."""
        if not self.spool.append(view):
            self.refused += 1
            metrics.VIEWS_DROPPED.labels("outbox_full").inc()
            event(
                LOGGER,
                "view refused: outbox full",
                logging.ERROR,
                videoPath=view.video_path,
                viewId=view.view_id,
                refused=self.refused,
                max_bytes=self.spool.max_bytes,
            )
            return False
        metrics.OUTBOX_VIEWS.set(self.spool.count)
        self._arrived.set()
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is waiting, for at most `timeout` seconds, then stop the thread.

        What is still undelivered stays on disk for the next process."""
        if not self._thread:
            return
        self._stop_by = time.monotonic() + timeout
        self._wake.set()
        self._arrived.set()
        self._thread.join(timeout + 1)
        if self.spool.count:
            event(LOGGER, "views left in the outbox at shutdown", logging.WARNING, count=self.spool.count)
        self.spool.close()

    @property
    def ready(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.transport.connected

    def stats(self) -> dict[str, int]:
        return {
            "buffered": self.spool.count,
            "sent": self.sent,
            "dropped": self.dropped,
            "refused": self.refused,
            "bytes": self.spool.bytes,
            "max_bytes": self.spool.max_bytes,
        }

    def _stopping(self) -> bool:
        return self._stop_by is not None

    def _run(self) -> None:
        self._adopt()
        while True:
            self._arrived.clear()  # before reading: a view put after the read sets it again
            pending = self.spool.oldest(self._batch_size)
            if not pending:
                if self._stopping():
                    break
                if not self._arrived.wait(self._idle_tick):
                    self._poll()
                    if time.monotonic() - self._adopted_at > ADOPT_EVERY:
                        self._adopt()
                continue
            if self._deliver([view for _, view in pending]):
                self.spool.remove_through(pending[-1][0])
                metrics.OUTBOX_VIEWS.set(self.spool.count)
                if 1 < len(pending) < self._batch_size and self.spool.count < self._batch_size:
                    # Busy: what arrives meanwhile waits on disk for the next batch (close() ends it).
                    self._wake.wait(self._linger)
                continue
            if self._stopping() and time.monotonic() >= (self._stop_by or 0):
                break
            self._pause(self._backoff.next_delay())
        self.transport.close()

    def _adopt(self) -> None:
        self._adopted_at = time.monotonic()
        try:
            self.spool.adopt_orphans()
            metrics.OUTBOX_VIEWS.set(self.spool.count)
        except (OSError, sqlite3.Error) as error:  # a folder that went read-only, a damaged file
            event(LOGGER, "outbox adoption failed", logging.ERROR, error=f"{type(error).__name__}: {error}")

    def _deliver(self, views: list[View]) -> bool:
        try:
            if not self.transport.connected:
                self.transport.connect()
            with tracing.sending(views) as traced:  # each view carries its send span's context along
                metrics.VIEWS_PUBLISHED.inc(len(views))
                if len(traced) == 1:
                    self.transport.send(traced[0])
                else:
                    cast("BatchTransport", self.transport).send_many(traced)
        except RejectedView as error:
            self.dropped += len(views)
            metrics.VIEWS_DROPPED.labels("rejected").inc(len(views))
            for view in views:
                event(
                    LOGGER,
                    "view rejected by receiver",
                    logging.ERROR,
                    videoPath=view.video_path,
                    viewId=view.view_id,
                    reason=str(error),
                )
            return True
        except Exception as error:
            metrics.VIEWS_RETRIED.inc(len(views))
            event(
                LOGGER,
                "view delivery failed, will retry",
                logging.WARNING,
                viewId=views[0].view_id,
                views=len(views),
                error=f"{type(error).__name__}: {error}",
            )
            self.transport.close()
            return False
        self._backoff.reset()
        self.sent += len(views)
        metrics.VIEWS_CONFIRMED.inc(len(views))
        if len(views) == 1:
            event(LOGGER, "view sent", videoPath=views[0].video_path, viewId=views[0].view_id)
        else:  # one line per batch: each line costs a write while the request threads wait for the GIL
            event(LOGGER, "views sent", count=len(views), viewIds=[view.view_id for view in views])
        return True

    def _poll(self) -> None:
        try:
            if self.transport.connected:
                self.transport.poll()
            else:
                self.transport.connect()
                self._backoff.reset()
        except Exception as error:
            event(LOGGER, "transport down", logging.WARNING, error=f"{type(error).__name__}: {error}")
            self.transport.close()
            self._pause(self._backoff.next_delay())

    def _pause(self, delay: float) -> None:
        if self._stop_by is None:
            self._wake.wait(delay)  # close() cuts the wait short
        else:
            time.sleep(max(0.0, min(delay, self._stop_by - time.monotonic())))
