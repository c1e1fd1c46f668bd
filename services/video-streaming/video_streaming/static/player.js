// The player page: list the videos, play the chosen one, and say what is happening.
import { formatBytes, loadRows, showState } from "../flixtube/flixtube.js";

const player = document.getElementById("player");
const heading = document.getElementById("now-playing");
const video = document.getElementById("video");
const library = document.getElementById("library");
const list = library.querySelector("[data-rows]");
let current = null; // the chosen video's name

const videoURL = (name) => `video?${new URLSearchParams({ path: name })}`;

/**
 * Each playback loads its own URL (the server ignores `playback`): the browser then fetches the
 * video from its first byte, which is how the server counts a view, instead of replaying or
 * revalidating a copy it cached earlier, which would count none, or count one twice.
 */
const playbackURL = (name) => `${videoURL(name)}&${new URLSearchParams({ playback: newId() })}`;
const newId = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;

function listItem({ path, size }) {
  const item = document.createElement("li");
  item.dataset.path = path;
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = path;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = formatBytes(size);
  const play = document.createElement("button");
  play.type = "button";
  play.textContent = "Play";
  play.setAttribute("aria-label", `Play ${path}`);
  play.addEventListener("click", () => choose(path, { play: true }));
  item.append(name, meta, play);
  return item;
}

/** Put `name` in the player; with `play`, start it (the click that asked for it allows sound). */
function choose(name, { play = false } = {}) {
  current = name;
  heading.textContent = name;
  for (const item of list.children) item.toggleAttribute("aria-current", item.dataset.path === name);
  video.hidden = false;
  video.src = playbackURL(name); // preload="none": nothing is fetched, and no view counted, before play
  if (play) {
    history.replaceState(null, "", `?${new URLSearchParams({ v: name })}`);
    player.scrollIntoView({ block: "nearest" });
    video.focus();
    // A refused autoplay leaves the player paused; errors arrive as "error" events.
    video.play().catch((error) => error.name === "NotAllowedError" && report());
  } else {
    showState(player, "ready", `Ready: press play to watch ${name}.`);
  }
}

/** Describe the player as it is now. */
function report() {
  if (video.error) return failed(current);
  if (video.ended) return showState(player, "ended", `Finished ${current}.`);
  if (video.paused) return showState(player, "paused", `Paused ${current}.`);
  return showState(player, "playing", `Playing ${current}.`);
}

function busy(message) {
  showState(player, "loading", message);
}

/** The video cannot be played: hide the player and say why, asking the server what it knows. */
async function failed(name) {
  video.hidden = true;
  busy(`${name} cannot be played; checking why…`);
  let why;
  try {
    const response = await fetch(videoURL(name), { method: "HEAD", cache: "no-store" });
    if (response.status === 404) why = `There is no video called “${name}”.`;
    else if (response.ok) why = `Your browser cannot play “${name}”: its format is not supported.`;
    else why = `“${name}” cannot be played: the service answered HTTP ${response.status}.`;
  } catch {
    why = "The video service cannot be reached.";
  }
  if (name === current) showState(player, "error", "", why);
}

video.addEventListener("play", () => busy(`Loading ${current}…`));
video.addEventListener("waiting", () => busy(`Buffering ${current}…`));
video.addEventListener("seeking", () => busy(`Seeking in ${current}…`));
for (const type of ["playing", "pause", "ended", "seeked", "error"]) video.addEventListener(type, report);
// Playing a finished video again is a new playback, counted as a new view.
video.addEventListener("ended", () => {
  video.src = playbackURL(current);
});

async function start() {
  const videos = await loadRows(library, "videos", "videos", listItem, {
    loading: "Loading videos…",
    empty: "No videos yet: put video files in the service's videos folder.",
    loaded: (rows) => `${rows.length} video${rows.length === 1 ? "" : "s"}.`,
  });
  if (!videos?.length) return;
  const wanted = new URLSearchParams(location.search).get("v");
  if (wanted === null) choose(videos[0].path);
  else if (videos.some((v) => v.path === wanted)) choose(wanted);
  else {
    current = wanted;
    heading.textContent = wanted;
    showState(player, "error", "", `There is no video called “${wanted}”. Choose one from the list.`);
  }
}

start();
