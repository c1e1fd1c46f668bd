// The history page: the most recent views, newest first, `limit` at a time (?skip=K&limit=N).
import { loadRows, row, timeElement } from "../flixtube/flixtube.js";

const region = document.getElementById("views");
const heading = document.getElementById("views-heading");
const newer = document.getElementById("newer");
const older = document.getElementById("older");
const query = new URLSearchParams(location.search);
const count = (name, fallback, min) => Math.max(min, Number.parseInt(query.get(name) ?? "", 10) || fallback);
const limit = Math.min(count("limit", 20, 1), 1000);
let skip = count("skip", 0, 0);

async function show() {
  newer.disabled = older.disabled = true;
  // One row more than shown tells whether there is an older page.
  const rows = await loadRows(region, `history?skip=${skip}&limit=${limit + 1}`, "history", render, {
    loading: "Loading views…",
    empty: skip ? "No older views." : "No views yet: play a video and it appears here.",
    loaded: (found) => `Views ${skip + 1} to ${skip + Math.min(found.length, limit)}.`,
    max: limit,
  });
  newer.disabled = skip === 0;
  older.disabled = !rows || rows.length <= limit;
  history.replaceState(null, "", `?${new URLSearchParams({ skip, limit })}`);
}

const render = (view) => row(view.videoPath, timeElement(view.viewedAt));

function turn(by) {
  skip = Math.max(0, skip + by);
  heading.focus(); // the pressed button may become disabled; keep keyboard users in place
  show();
}

newer.addEventListener("click", () => turn(-limit));
older.addEventListener("click", () => turn(limit));
show();
