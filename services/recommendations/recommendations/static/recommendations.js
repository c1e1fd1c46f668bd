// The recommendations page: the most viewed videos, most viewed first.
import { loadRows, row } from "../flixtube/flixtube.js";

const views = (n) => `${n} view${n === 1 ? "" : "s"}`;

loadRows(document.getElementById("ranking"), "recommendations?limit=20", "recommendations", (video) =>
  row(video.videoPath, views(video.views)), {
  loading: "Loading the ranking…",
  empty: "No views yet: play a video and it appears here.",
  loaded: (found) => `The ${found.length} most viewed video${found.length === 1 ? "" : "s"}.`,
});
