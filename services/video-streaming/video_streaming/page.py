"""`GET /`: the public page that lists the videos and plays the chosen one."""

from flixtube_common.pages import service_page

blueprint = service_page(__name__, template="player.html", script="player.js", title="Watch a video")
