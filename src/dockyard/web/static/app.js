// dockyard dashboard: plain JavaScript modules over the JSON API (no build step). This
// file picks the view for the address; lib/ holds the API, router, events and charts,
// views/ one file per view.

import { call } from "./lib/api.js";
import { $, el, say } from "./lib/dom.js";
import { go, link, parse, start } from "./lib/router.js";
import { homeView } from "./views/home.js";
import { jobView } from "./views/job.js";
import { queueView } from "./views/queue.js";

let current = null;

function crumbs(route) {
  const parts = [link({ view: "home" }, "Queues")];
  if (route.queue) {
    parts.push(link({ view: "queue", queue: route.queue, state: "waiting" }, route.queue,
      { title: route.queue }));
  }
  if (route.view === "queue") parts.push(el("span", {}, route.state));
  if (route.view === "job") parts.push(el("span", { title: route.id }, `job ${route.id}`));
  const nav = $("crumbs");
  nav.replaceChildren();
  parts.forEach((part, i) => { if (i) nav.append(" / "); nav.append(part); });
}

function unknownView(root) {
  root.append(el("p", {}, "No such page. ", link({ view: "home" }, "See the queues.")));
  return { title: "not found", dispose() {} };
}

function render() {
  const route = parse(new URL(location.href));
  crumbs(route);
  $("search").hidden = !route.queue;
  $("search").dataset.queue = route.queue || "";
  if (!(current?.update && current.update(route))) {
    current?.dispose();
    say("");
    const root = $("view");
    root.replaceChildren();
    const make = { home: homeView, queue: queueView, job: jobView }[route.view] || unknownView;
    current = make(root, route);
  }
  const title = route.view === "queue" ? `${route.queue} · ${route.state}` : current.title;
  document.title = `${title} · dockyard`;
}

// Find: an exact job id opens that job; anything else lists the jobs of that name in the
// state shown (or waiting).
$("search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("search-text").value.trim();
  const queue = $("search").dataset.queue;
  if (!text || !queue) return;
  const route = parse(new URL(location.href));
  try {
    await call(`/queues/${encodeURIComponent(queue)}/jobs/${encodeURIComponent(text)}`);
    go({ view: "job", queue, id: text });
    return;
  } catch (error) {
    if (![404, 422].includes(error.status)) { say(error.message, true); return; }
  }
  go({ view: "queue", queue, state: route.state || "waiting", page: 1, size: route.size,
    name: text });
});

start(render);
