"""Views in MongoDB: one document per view, made idempotent by a unique index on viewId.

The collection may also hold views written by another implementation of the design, which stores only
`videoPath` (no viewId, perhaps no viewedAt, or viewedAt as a string). The unique index is therefore
partial, over the documents that have a string viewId: on MongoDB a full unique index would not build
over such documents (their missing viewIds all count as the same null). Reads take whatever is there.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pymongo
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from flixtube_common.logs import event
from flixtube_common.views import InvalidView, View, iso_utc, parse_iso_utc

LOGGER = logging.getLogger(__name__)

VIEW_ID_INDEX = "viewId_unique"  # partial; an earlier version made a full one, named "viewId_1"
LEGACY_VIEW_ID_INDEX = "viewId_1"


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


def listed(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored view as `GET /history` lists it, whoever wrote it: viewedAt as ISO-8601 UTC, or None when
    it is missing or not a time; a string viewedAt (written by another implementation) as it reads."""
    return {"videoPath": stored.get("videoPath"), "viewedAt": _viewed_at(stored.get("viewedAt"))}


def _viewed_at(value: Any) -> str | None:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, str):
        try:
            return iso_utc(parse_iso_utc(value))
        except InvalidView:
            return value
    return None


class ViewStore:
    def __init__(self, collection: Collection[dict[str, Any]]) -> None:
        self.collection = collection
        self._indexed = False

    def record(self, view: View) -> bool:
        """Store one view; False if this viewId was stored before. Raises StoreUnavailable."""
        self._ensure_indexes()
        try:
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
        self._ensure_indexes()
        try:
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
        """Build the indexes once; any failure (a duplicate key included) is an outage, never a duplicate:
        without the unique index a write could store a view twice."""
        if self._indexed:
            return
        try:
            self.collection.create_index(
                "viewId",
                name=VIEW_ID_INDEX,
                unique=True,
                partialFilterExpression={"viewId": {"$type": "string"}},
            )
            self.collection.create_index([("viewedAt", pymongo.DESCENDING)])
            self._drop_legacy_index()
        except PyMongoError as error:
            event(
                LOGGER,
                "index build failed",
                logging.ERROR,
                collection=self.collection.full_name,
                error=f"{type(error).__name__}: {error}",
            )
            raise StoreUnavailable(f"index build failed: {type(error).__name__}: {error}") from error
        self._indexed = True
        event(LOGGER, "indexes ensured", collection=self.collection.full_name)

    def _drop_legacy_index(self) -> None:
        """The full unique index of an earlier version, now that the partial one keeps viewIds unique."""
        legacy = self.collection.index_information().get(LEGACY_VIEW_ID_INDEX)
        if legacy is not None and "partialFilterExpression" not in legacy:
            self.collection.drop_index(LEGACY_VIEW_ID_INDEX)
            event(
                LOGGER,
                "legacy index dropped",
                collection=self.collection.full_name,
                index=LEGACY_VIEW_ID_INDEX,
            )
