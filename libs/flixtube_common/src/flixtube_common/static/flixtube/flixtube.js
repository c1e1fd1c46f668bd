// Helpers every FlixTube page shares: fetch JSON, show a state, format sizes and times.

/** GET `url` and return its JSON; throws an Error whose message a person can read. */
export async function getJSON(url) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
  } catch {
    throw new Error("the service cannot be reached");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `the service answered HTTP ${response.status}`);
  return body;
}

/**
 * Show one state of a region: `state` goes to data-state (for styles and tests), `message` to its
 * polite live status line, `error` (if any) to its alert line.
 */
export function showState(region, state, message, error = "") {
  region.dataset.state = state;
  region.setAttribute("aria-busy", String(state === "loading"));
  region.querySelector("[data-status]").textContent = message;
  region.querySelector("[data-error]").textContent = error;
}

export function formatBytes(bytes) {
  const units = ["bytes", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit ? value.toFixed(value < 10 ? 1 : 0) : value} ${units[unit]}`;
}

/** A <time> element: the moment in the reader's locale, the exact ISO value in datetime. */
export function timeElement(iso) {
  const time = document.createElement("time");
  time.dateTime = iso;
  time.textContent = new Date(iso).toLocaleString();
  return time;
}

/** An <li> with a name and a muted detail (a string or an element). */
export function row(name, detail) {
  const item = document.createElement("li");
  const label = document.createElement("span");
  label.className = "name";
  label.textContent = name;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.append(detail);
  item.append(label, meta);
  return item;
}

/**
 * Load the array under `key` of `url`'s JSON into the region's list (at most `max` rows), showing
 * loading, empty and error states. Returns every row received, or null when loading failed.
 */
export async function loadRows(region, url, key, render, { loading, empty, loaded, max = Infinity }) {
  showState(region, "loading", loading);
  let rows;
  try {
    rows = (await getJSON(url))[key];
  } catch (error) {
    showState(region, "error", "", `Could not load the list: ${error.message}.`);
    return null;
  }
  region.querySelector("[data-rows]").replaceChildren(...rows.slice(0, max).map(render));
  if (rows.length === 0) showState(region, "empty", empty);
  else showState(region, "loaded", loaded(rows));
  return rows;
}
