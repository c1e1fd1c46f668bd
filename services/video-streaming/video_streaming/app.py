"""The video-streaming app factory."""

from __future__ import annotations

from flask import Flask, Response, abort, jsonify, request

from flixtube_common import config, logs, metrics, pages, tracing, web
from flixtube_common.outbox import Outbox
from flixtube_common.publisher import AmqpPublisher
from flixtube_common.spool import Spool
from flixtube_common.views import View
from video_streaming import page
from video_streaming.history_client import HistoryPoster
from video_streaming.library import Library, UnsafeName
from video_streaming.settings import Settings
from video_streaming.streaming import answer, body_length, is_playback_start

SERVICE = "video-streaming"


def create_app(env: config.Env | None = None, outbox: Outbox | None = None) -> Flask:
    """Build the app from the environment (or `env`); tests may pass their own outbox."""
    logs.configure(SERVICE)
    settings = Settings.from_env(config.environ() if env is None else env)
    app = web.create_base_app(__name__, SERVICE)
    pages.register(app, page.blueprint)
    library = Library(settings.videos_dir)
    outbox = outbox or _outbox(settings)
    web.add_background(app, outbox)
    if settings.messaging != "http":
        web.add_readiness_check(app, "broker", lambda: outbox.ready)

    @app.get("/video")
    def video() -> Response:
        name = request.args.get("path")
        try:
            found = library.find(name) if name is not None else library.first()
        except UnsafeName as error:
            abort(400, description=str(error))
        if found is None:
            abort(404, description=f"no video {name!r}" if name is not None else "no videos")
        response, decided = answer(request, found)
        if request.method == "GET":
            metrics.STREAMED_BYTES.inc(body_length(request, found, decided))
        if is_playback_start(request, decided):
            metrics.PLAYBACK_STARTS.inc()
            outbox.put(View(video_path=found.path, trace=tracing.carrier()))
        return response

    @app.get("/videos")
    def videos() -> Response:
        return jsonify(videos=[{"path": video.path, "size": video.size} for video in library.videos()])

    @app.get("/stats")
    def stats() -> Response:
        return jsonify(views=outbox.stats())

    return app


def _outbox(settings: Settings) -> Outbox:
    spool = Spool(settings.outbox_dir, settings.outbox_max_bytes)
    if settings.messaging == "http":
        return Outbox(HistoryPoster(settings.history_url), spool)
    assert settings.rabbit_url is not None
    return Outbox(AmqpPublisher(settings.rabbit_url, settings.messaging, SERVICE), spool)
