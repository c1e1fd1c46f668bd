"""Views in MongoDB: one document per view, made idempotent by a unique index on viewId."""

from __future__ import annotations

import logging
from typing import Any

import pymongo
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from flixtube_common.logs import event
from flixtube_common.views import View

LOGGER = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """The database could not be reached or did not accept the write; nothing was stored."""


def client(url: str, service: str) -> pymongo.MongoClient[dict[str, Any]]:
    # pymongo waits 30 s for a server by default: a request or probe must fail fast instead.
    # connect=False: the client is built before gunicorn forks and must not open sockets then.
    return pymongo.MongoClient(
        url,
        appname=service,
        tz_aware=True,
        connect=False,
        serverSelectionTimeoutMS=2000,
        connectTimeoutMS=2000,
        socketTimeoutMS=5000,
    )


def document(view: View) -> dict[str, Any]:
    """One view as the contract stores it: collection documents with videoPath, viewedAt and viewId."""
    return {"viewId": view.view_id, "videoPath": view.video_path, "viewedAt": view.viewed_at}


class ViewStore:
    def __init__(self, collection: Collection[dict[str, Any]]) -> None:
        self.collection = collection
        self._indexed = False

    def record(self, view: View) -> bool:
        """Store one view; False if this viewId was stored before. Raises StoreUnavailable."""
        try:
            self._ensure_indexes()
            self.collection.insert_one(document(view))
        except DuplicateKeyError:
            return False
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
        return True

    def record_many(self, views: list[View]) -> list[bool]:
        """Store the views with one write; for each, False if its viewId was stored before.

        Raises StoreUnavailable if any view may not be stored (then every one of them may be retried).
        """
        try:
            self._ensure_indexes()
            self.collection.insert_many([document(view) for view in views], ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if error.details.get("writeConcernErrors") or any(e.get("code") != 11000 for e in errors):
                raise StoreUnavailable(f"BulkWriteError: {error}") from error
            duplicates = {e["index"] for e in errors}
            return [index not in duplicates for index in range(len(views))]
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
        return [True] * len(views)

    def ping(self, timeout: float = 0.6) -> bool:
        try:
            with pymongo.timeout(timeout):
                self.collection.database.command("ping")
        except PyMongoError:
            return False
        return True

    def _ensure_indexes(self) -> None:
        if self._indexed:
            return
        self.collection.create_index("viewId", unique=True)
        self.collection.create_index([("viewedAt", pymongo.DESCENDING)])
        self._indexed = True
        event(LOGGER, "indexes ensured", collection=self.collection.full_name)
