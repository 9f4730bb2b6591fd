// Addresses of the views, with the history API: `queues/NAME`, `queues/NAME/STATE?page=N`,
// `queues/NAME/jobs/ID`, relative to the app's root (the page's <base>), so that a shared
// link opens the same view and back/forward move between views.

export const STATES = ["waiting", "active", "delayed", "prioritized", "waiting-children",
  "completed", "failed", "paused"];
export const PAGE_SIZES = [10, 20, 50, 100];
export const DEFAULT_SIZE = 20;

const base = () => new URL(document.baseURI);

// The route an address names: {view: "home" | "queue" | "job" | "unknown", ...}.
export function parse(url) {
  const root = base().pathname;
  const path = url.pathname.startsWith(root) ? url.pathname.slice(root.length) : "";
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const query = url.searchParams;
  if (parts.length === 0) return { view: "home" };
  if (parts[0] !== "queues" || parts.length < 2) return { view: "unknown" };
  const queue = parts[1];
  if (parts.length === 4 && parts[2] === "jobs") return { view: "job", queue, id: parts[3] };
  if (parts.length > 3 || (parts.length === 3 && !STATES.includes(parts[2]))) {
    return { view: "unknown" };
  }
  const size = Number(query.get("size"));
  return {
    view: "queue",
    queue,
    state: parts[2] || "waiting",
    page: Math.max(1, Math.floor(Number(query.get("page"))) || 1),
    size: PAGE_SIZES.includes(size) ? size : DEFAULT_SIZE,
    name: query.get("name") || "",
  };
}

// The address of a route (absolute, under the app's root).
export function href(route) {
  const enc = encodeURIComponent;
  let path = "";
  if (route.view === "queue") {
    path = `queues/${enc(route.queue)}/${route.state || "waiting"}`;
    const query = new URLSearchParams();
    if (route.page > 1) query.set("page", route.page);
    if (route.size && route.size !== DEFAULT_SIZE) query.set("size", route.size);
    if (route.name) query.set("name", route.name);
    if (String(query)) path += `?${query}`;
  } else if (route.view === "job") {
    path = `queues/${enc(route.queue)}/jobs/${enc(route.id)}`;
  }
  return new URL(path, base()).href;
}

let onChange = () => {};

// Show `route` (or an address), adding it to the history (or replacing the current entry).
export function go(route, { replace = false } = {}) {
  const url = typeof route === "string" ? route : href(route);
  if (replace) history.replaceState(null, "", url);
  else if (url !== location.href) history.pushState(null, "", url);
  onChange();
}

// An in-app link: a real address (opens in a new tab, can be copied), shown here on click.
export function link(route, text, props = {}) {
  const a = document.createElement("a");
  a.href = href(route);
  a.dataset.route = "";
  a.textContent = text;
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(a.dataset, value);
    else a[key] = value;
  }
  return a;
}

// Start: `render` runs on each change of address (links, back/forward, go()).
export function start(render) {
  onChange = render;
  window.addEventListener("popstate", render);
  document.addEventListener("click", (event) => {
    const a = event.target.closest("a[data-route]");
    if (!a || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    go(a.href);
  });
  render();
}
