"""The services' small HTML pages: one shared look (base template, CSS, a few JS helpers) and `GET /`.

Everything is served by the service itself, so the pages work offline: no CDN and no build step.
Each service keeps its own template and script next to its code and builds its page with
`service_page`; the shared files live here and are served under `/static/flixtube/`.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, render_template

# The pages load only their own files, and nothing may frame them.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

shared = Blueprint(
    "flixtube",
    __name__,
    static_folder="static/flixtube",
    static_url_path="/static/flixtube",
    template_folder="templates",
)


def service_page(import_name: str, template: str, script: str, title: str) -> Blueprint:
    """A blueprint that renders `template` at `GET /` and serves the service's `static/` folder.

    The folder, which holds `script` (the page's JavaScript module), is served under `/static/page/`.
    """
    page = Blueprint(
        "page",
        import_name,
        static_folder="static",
        static_url_path="/static/page",
        template_folder="templates",
    )

    @page.get("/")
    def index() -> Response:
        response = Response(render_template(template, title=title, script=script), mimetype="text/html")
        response.headers.update(SECURITY_HEADERS)
        return response

    return page


def register(app: Flask, page: Blueprint) -> None:
    """Add a service's page and the shared files it uses to `app`."""
    app.register_blueprint(shared)
    app.register_blueprint(page)
