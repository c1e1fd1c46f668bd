"""The history app factory: `POST /viewed` records a view, `GET /history` lists them newest first."""

from __future__ import annotations

import logging

import pymongo
from flask import Flask, Response, abort, jsonify
from pymongo.errors import PyMongoError

from flixtube_common import config, logs, metrics, pages, tracing, web
from flixtube_common.store import StoreUnavailable, ViewStore, listed
from flixtube_common.subscriber import SubscriberSettings, create_subscriber_app
from flixtube_common.views import InvalidView, View
from history import page

SERVICE = "history"
COLLECTION = "videos"
LOGGER = logging.getLogger(__name__)
MAX_LIMIT = 1000


def load_settings(env: config.Env) -> SubscriberSettings:
    return SubscriberSettings.from_env(
        env, service=SERVICE, collection=COLLECTION, queue="history.viewed", consumes_in=("queue", "fanout")
    )


def create_app(env: config.Env | None = None, views: ViewStore | None = None) -> Flask:
    """Build the app from the environment (or `env`); tests may pass their own store."""
    app, views = create_subscriber_app(__name__, load_settings, env, views)
    pages.register(app, page.blueprint)
    counted = metrics.SubscriberMetrics.of(SERVICE)

    @app.post("/viewed")
    def viewed() -> tuple[Response, int]:
        counted.consumed.inc()
        try:
            # Parsed by the view's own parser: Flask's get_json lets a too deeply nested body raise.
            view = View.from_bytes(web.read_body())
        except InvalidView as error:
            abort(400, description=str(error))
        try:
            with tracing.writing(COLLECTION):
                stored = views.record(view)
        except StoreUnavailable as error:
            counted.outages.inc()
            logs.event(LOGGER, "view not stored: database unavailable", logging.ERROR, error=str(error))
            abort(503, description="database unavailable; retry with the same viewId")
        counted.recorded([stored])
        logs.event(
            LOGGER,
            "view stored" if stored else "duplicate view ignored",
            videoPath=view.video_path,
            viewId=view.view_id,
            via="http",
        )
        return jsonify(viewId=view.view_id, stored=stored), 200

    @app.get("/history")
    def history() -> Response:
        skip = web.query_int("skip", 0, cap=2**31)
        limit = web.query_int("limit", 20, cap=MAX_LIMIT)
        if limit == 0:  # MongoDB reads limit 0 as "no limit"
            return jsonify(history=[])
        try:
            found = list(
                views.collection.find({}, {"_id": 0, "videoPath": 1, "viewedAt": 1})
                .sort([("viewedAt", pymongo.DESCENDING), ("_id", pymongo.DESCENDING)])
                .skip(skip)
                .limit(limit)
            )
        except PyMongoError:
            abort(503, description="database unavailable")
        return jsonify(history=[listed(document) for document in found])

    return app
