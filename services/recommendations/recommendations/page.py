"""`GET /`: a page listing the most viewed videos."""

from flixtube_common.pages import service_page

blueprint = service_page(
    __name__, template="recommendations.html", script="recommendations.js", title="Most viewed"
)
