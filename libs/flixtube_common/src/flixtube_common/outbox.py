"""Views leave the request path through a bounded in-memory outbox and one background thread.

The thread owns the transport (pika's BlockingConnection is not thread-safe), so requests never wait
for the broker or for history. While the transport is down, views wait in the outbox and go out in
order once it is back; a full outbox drops the view, logged as an error and counted.

A transport that can carry several views at once (`send_many`, e.g. publishing a batch and waiting for
all its confirms together) gets what is waiting, up to `batch_size` views. After a batch of several
views that was not full, the thread rests 50 ms, so a busy process sends fewer, larger batches (less
work for it and for the broker), while views that come one at a time still leave at once. A failed
batch is retried whole (delivery is at least once, and the viewId makes a repeat harmless).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Protocol, cast

from flixtube_common import metrics, tracing
from flixtube_common.backoff import Backoff
from flixtube_common.logs import event
from flixtube_common.views import View

LOGGER = logging.getLogger(__name__)


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
        capacity: int = 10_000,
        max_attempts: int | None = None,
        backoff: Backoff | None = None,
        idle_tick: float = 1.0,
        *,
        batch_size: int = 100,
        linger: float = 0.05,
    ) -> None:
        self.transport = transport
        self.max_attempts = max_attempts
        self._backoff = backoff or Backoff()
        self._idle_tick = idle_tick
        self._batch_size = batch_size if hasattr(transport, "send_many") else 1
        self._linger = linger
        self._queue: queue.Queue[View] = queue.Queue(maxsize=capacity)
        self._wake = threading.Event()
        self._stop_by: float | None = None
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self.sent = 0
        self.dropped = 0

    def start(self) -> None:
        """Start the sender thread in this process (again after a fork, where threads do not survive)."""
        if self._pid == os.getpid() and self._thread and self._thread.is_alive():
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def put(self, view: View) -> bool:
        try:
            self._queue.put_nowait(view)
        except queue.Full:
            self.dropped += 1
            metrics.VIEWS_DROPPED.labels("outbox_full").inc()
            event(
                LOGGER,
                "view dropped: outbox full",
                logging.ERROR,
                videoPath=view.video_path,
                viewId=view.view_id,
                dropped=self.dropped,
                capacity=self._queue.maxsize,
            )
            return False
        metrics.OUTBOX_VIEWS.inc()
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is buffered, for at most `timeout` seconds, then stop the thread."""
        if not self._thread:
            return
        self._stop_by = time.monotonic() + timeout
        self._wake.set()
        self._thread.join(timeout + 1)
        if self._queue.qsize():
            event(LOGGER, "views undelivered at shutdown", logging.ERROR, count=self._queue.qsize())

    @property
    def ready(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.transport.connected

    def stats(self) -> dict[str, int]:
        return {"buffered": self._queue.qsize(), "sent": self.sent, "dropped": self.dropped}

    def _stopping(self) -> bool:
        return self._stop_by is not None

    def _run(self) -> None:
        pending: list[View] = []
        attempts = 0
        while True:
            if not pending:
                try:
                    pending = [self._queue.get(timeout=0 if self._stopping() else self._idle_tick)]
                except queue.Empty:
                    if self._stopping():
                        break
                    self._poll()
                    continue
                pending += self._take(self._batch_size - 1)
            if self._deliver(pending):
                metrics.OUTBOX_VIEWS.dec(len(pending))  # the depth counts a batch until it is done with
                if 1 < len(pending) < self._batch_size and self._queue.qsize() < self._batch_size:
                    # Busy: what arrives meanwhile waits in the queue for the next batch (close() ends it).
                    self._wake.wait(self._linger)
                pending, attempts = [], 0
                continue
            attempts += 1
            if self.max_attempts and attempts >= self.max_attempts:
                metrics.VIEWS_DROPPED.labels("retries_exhausted").inc(len(pending))
                metrics.OUTBOX_VIEWS.dec(len(pending))
                for view in pending:
                    self.dropped += 1
                    event(
                        LOGGER,
                        "view dropped: retries exhausted",
                        logging.ERROR,
                        videoPath=view.video_path,
                        viewId=view.view_id,
                        attempts=attempts,
                    )
                pending, attempts = [], 0
            if self._stopping() and time.monotonic() >= (self._stop_by or 0):
                break
            self._pause(self._backoff.next_delay())
        self.transport.close()

    def _take(self, most: int) -> list[View]:
        """Up to `most` more views that are already waiting, without waiting for any."""
        views = []
        for _ in range(most):
            try:
                views.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return views

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
