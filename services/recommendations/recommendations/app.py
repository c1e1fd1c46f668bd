"""The recommendations app factory: `GET /recommendations` ranks videos by views, most viewed first.

Each view is stored once under its unique viewId and the counts are computed from the stored views,
so a crash between any two steps of the consumer can neither lose nor double a count.
"""

from __future__ import annotations

from flask import Flask, Response, abort, jsonify
from pymongo.errors import PyMongoError

from flixtube_common import config, pages, web
from flixtube_common.store import ViewStore
from flixtube_common.subscriber import SubscriberSettings, create_subscriber_app
from recommendations import page

SERVICE = "recommendations"
MAX_LIMIT = 100


def load_settings(env: config.Env) -> SubscriberSettings:
    # Only a broadcast reaches a second subscriber: in `queue` mode history is the single recipient.
    return SubscriberSettings.from_env(
        env, service=SERVICE, collection="views", queue="recommendations.viewed", consumes_in=("fanout",)
    )


def create_app(env: config.Env | None = None, views: ViewStore | None = None) -> Flask:
    """Build the app from the environment (or `env`); tests may pass their own store."""
    app, views = create_subscriber_app(__name__, load_settings, env, views)
    pages.register(app, page.blueprint)

    @app.get("/recommendations")
    def recommendations() -> Response:
        limit = web.query_int("limit", 10, cap=MAX_LIMIT)
        if limit == 0:
            return jsonify(recommendations=[])
        pipeline = [
            {"$group": {"_id": "$videoPath", "views": {"$sum": 1}}},
            {"$sort": {"views": -1, "_id": 1}},
            {"$limit": limit},
        ]
        try:
            ranked = list(views.collection.aggregate(pipeline))
        except PyMongoError:
            abort(503, description="database unavailable")
        return jsonify(recommendations=[{"videoPath": row["_id"], "views": row["views"]} for row in ranked])

    return app
