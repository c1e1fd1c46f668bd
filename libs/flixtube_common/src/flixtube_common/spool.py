"""The outbox's views on disk, so that a killed process loses none: SQLite files in WAL mode in one folder.

Each process writes its own file, `outbox-<id>.sqlite3`, and holds an exclusive lock (flock) on its
`outbox-<id>.lock` for as long as it lives; the kernel releases the lock when the process ends, however
it ends (SIGKILL and OOM kills included). A file whose lock can be taken therefore belongs to a process
that is gone: any other process adopts it, moving its views into its own file in one transaction and
then deleting it. So several gunicorn workers share one folder without ever sending the same view at the
same time, and a restarted process (or any of its siblings) delivers what its predecessor left.

Writes are committed before `append` returns, with `synchronous=NORMAL`: in WAL mode a commit then
survives the process being killed (it is in the operating system's cache, written out at checkpoints),
though not a power loss of the machine in the instant after it. On Kubernetes the folder is an
`emptyDir` volume, which survives container restarts but not the loss of the node.

The folder is bounded: each process keeps at most `max_bytes` of views; `append` refuses more.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import sqlite3
import threading
import uuid
from pathlib import Path

from flixtube_common.logs import event
from flixtube_common.views import View

LOGGER = logging.getLogger(__name__)

ROW_OVERHEAD = 64  # bytes a row costs beside its body (row id, record header, page and index space)
PREFIX = "outbox-"

# `trace`: the view's W3C trace context (JSON), kept beside the body, which is the message as sent.
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS views (id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL, trace TEXT)"
)


class Spool:
    """The views of one process, oldest first; `append` from any thread, the rest from the sender only."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._pid: int | None = None
        self._path = Path()
        self.count = 0
        self.bytes = 0

    def append(self, view: View) -> bool:
        """Store the view durably; False (and nothing stored) if the budget is used up."""
        body = view.to_bytes()
        with self._lock:
            db = self._open()
            if self.bytes + len(body) + ROW_OVERHEAD > self.max_bytes:
                return False
            db.execute(
                "INSERT INTO views (body, trace) VALUES (?, ?)",
                (body, json.dumps(view.trace) if view.trace else None),
            )
            self.count += 1
            self.bytes += len(body) + ROW_OVERHEAD
        return True

    def oldest(self, most: int) -> list[tuple[int, View]]:
        """Up to `most` views, oldest first, with their row ids (a row that is no view is dropped, logged)."""
        with self._lock:
            rows = (
                self._open()
                .execute("SELECT id, body, trace FROM views ORDER BY id LIMIT ?", (most,))
                .fetchall()
            )
        views = []
        for row_id, body, trace in rows:
            try:
                view = View.from_bytes(body)
                views.append((row_id, dataclasses.replace(view, trace=json.loads(trace)) if trace else view))
            except ValueError as error:  # an InvalidView or bad trace JSON: only a file edited by hand
                event(LOGGER, "unreadable outbox row dropped", logging.ERROR, row=row_id, error=str(error))
                self.remove_through(row_id)
        return views

    def remove_through(self, row_id: int) -> None:
        """Delete every view up to and including `row_id` (they were delivered)."""
        with self._lock, self._open() as db:
            db.execute("BEGIN IMMEDIATE")
            count, size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM views WHERE id <= ?", (row_id,)
            ).fetchone()
            db.execute("DELETE FROM views WHERE id <= ?", (row_id,))
            self.count -= count
            self.bytes -= size + count * ROW_OVERHEAD

    def adopt_orphans(self) -> int:
        """Move the views of every file whose process is gone into this process's file; how many."""
        self._open_locked()
        adopted = 0
        for lock_path in sorted(self.directory.glob(f"{PREFIX}*.lock")):
            if lock_path != self._path.with_suffix(".lock"):
                adopted += self._adopt(lock_path)
        return adopted

    def close(self) -> None:
        """Close the file, and delete it if it holds no view (else a later process adopts it)."""
        with self._lock:
            if self._db is None or self._pid != os.getpid():
                return
            empty = self._db.execute("SELECT COUNT(*) FROM views").fetchone()[0] == 0
            self._db.close()
            self._db = None
            if empty:
                _delete(self._path)
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _open_locked(self) -> sqlite3.Connection:
        with self._lock:
            return self._open()

    def _open(self) -> sqlite3.Connection:
        """This process's file (made on first use in each process: the app is built before gunicorn forks)."""
        if self._db is not None and self._pid == os.getpid():
            return self._db
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{PREFIX}{uuid.uuid4().hex}"
        self._path = self.directory / f"{name}.sqlite3"
        self._lock_fd = os.open(self.directory / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new name: nobody else holds it
        self._db = _connect(self._path)
        self._pid = os.getpid()
        self.count = self.bytes = 0
        event(LOGGER, "outbox file opened", file=str(self._path))
        return self._db

    def _adopt(self, lock_path: Path) -> int:
        orphan = lock_path.with_suffix(".sqlite3")
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # its process is alive and sends its views itself
            if not orphan.exists():  # adopted by another process meanwhile, or never written
                lock_path.unlink(missing_ok=True)
                return 0
            with self._lock:
                moved = self._move_from(orphan)
            _delete(orphan)
        finally:
            os.close(descriptor)
        event(LOGGER, "outbox file adopted", file=str(orphan), views=moved)
        return moved

    def _move_from(self, orphan: Path) -> int:
        _connect(orphan).close()  # brings a file of an older version to this schema (we hold its lock)
        db = self._open()
        db.execute("ATTACH DATABASE ? AS orphan", (f"file:{orphan}?mode=rw",))
        try:
            with db:  # one transaction: the views are in this file, or still only in the orphan
                db.execute("BEGIN IMMEDIATE")
                moved = db.execute(
                    "INSERT INTO views (body, trace) SELECT body, trace FROM orphan.views ORDER BY id"
                ).rowcount
        finally:
            db.execute("DETACH DATABASE orphan")
        count, size = db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM views").fetchone()
        self.count, self.bytes = count, size + count * ROW_OVERHEAD
        return moved


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: each statement commits on its own, unless a `with db` block groups them.
    db = sqlite3.connect(f"file:{path}", uri=True, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA journal_size_limit=4194304")  # keep the WAL file small once checkpointed
    db.execute(SCHEMA)
    if "trace" not in {column[1] for column in db.execute("PRAGMA table_info(views)")}:
        db.execute("ALTER TABLE views ADD COLUMN trace TEXT")  # a file written before traces were kept
    return db


def _delete(database: Path) -> None:
    """A database file with its WAL and shared-memory files, then its lock file."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{database}{suffix}").unlink()
    database.with_suffix(".lock").unlink(missing_ok=True)
