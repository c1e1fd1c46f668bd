"""`GET /`: a page listing the most recent views, newest first, a page at a time."""

from flixtube_common.pages import service_page

blueprint = service_page(__name__, template="history.html", script="history.js", title="Recent views")
