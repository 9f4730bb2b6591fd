// Small DOM and formatting helpers shared by the views.

export const $ = (id) => document.getElementById(id);

// A copy of <template id=...>'s content.
export const clone = (id) => $(id).content.cloneNode(true);

// An element with properties (`class`, `dataset`, `title`, ...) and children (text or nodes).
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "class") node.className = value;
    else node[key] = value;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export function say(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "failed" : "";
}

export function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}

// "in 5m" / "3h ago": how far an epoch time (seconds) is from now.
export function fromNow(seconds) {
  const delta = Math.round(seconds - Date.now() / 1000);
  const size = Math.abs(delta);
  const text = size >= 86400 ? `${Math.floor(size / 86400)}d` : size >= 3600
    ? `${Math.floor(size / 3600)}h` : size >= 60 ? `${Math.floor(size / 60)}m` : `${size}s`;
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}

// "date (3h ago)", or `none` for a missing time.
export function moment(seconds, none = "not yet") {
  return seconds ? `${when(seconds)} (${fromNow(seconds)})` : none;
}

export const firstLine = (text) => String(text ?? "").split("\n", 1)[0];

export function stateTag(state) {
  return el("span", { class: `state ${state}` }, state);
}

export function progressBar(progress) {
  if (progress === 0) return "";
  if (typeof progress !== "number") return el("span", {}, JSON.stringify(progress ?? null));
  const pct = Math.max(0, Math.min(100, progress));
  const bar = el("span", { class: "bar", title: `${progress}%` }, el("span"));
  bar.firstChild.style.width = `${pct}%`;
  return bar;
}

// `fn` run one at a time: a call while it runs makes it run once more afterwards, never
// more (so a burst of triggers costs at most two runs).
export function singleFlight(fn) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) { again = true; return running; }
    running = (async () => {
      do {
        again = false;
        try { await fn(); } catch (error) { say(error.message, true); }
      } while (again);
    })();
    try { await running; } finally { running = null; }
  };
  return run;
}

// Ask first; say so when the user declines.
export function ask(question, cancelled) {
  if (confirm(question)) return true;
  say(cancelled);
  return false;
}
