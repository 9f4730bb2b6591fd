// The overview: every queue with its counts and throughput, each a link to its view.

import { call } from "../lib/api.js";
import { $, clone, el, singleFlight } from "../lib/dom.js";
import { go, link } from "../lib/router.js";

const COLUMNS = ["waiting", "active", "delayed", "prioritized", "completed", "failed"];
const NARROW = new Set(["delayed", "prioritized"]);

function row(q) {
  const name = link({ view: "queue", queue: q.name, state: "waiting" }, q.name);
  const first = el("td", { class: q.paused ? "name paused" : "name", title: q.name }, name,
    q.paused ? " (paused)" : "");
  const tr = el("tr", { dataset: { queue: q.name } }, first);
  if (q.error) {  // a queue this server cannot open (its name, say): show why
    tr.append(el("td", { class: "failed", colSpan: 7 }, q.error));
    return tr;
  }
  for (const s of COLUMNS) {
    const n = s === "waiting" ? q.counts.waiting + q.counts.paused : q.counts[s];
    const cls = `num${NARROW.has(s) ? " hide-narrow" : ""}`;
    tr.append(el("td", { class: cls, dataset: { state: s } }, String(n)));
  }
  tr.append(el("td", { class: "num rate hide-narrow" }, (q.jobs_per_second ?? 0).toFixed(1)));
  tr.style.cursor = "pointer";
  tr.addEventListener("click", (event) => {
    if (!event.target.closest("a")) go(name.href);
  });
  return tr;
}

export function homeView(root) {
  root.append(clone("tpl-home"));
  const load = async () => {
    const { queues } = await call("/queues");
    const body = $("queues")?.tBodies[0];
    if (!body) return;  // left meanwhile
    body.replaceChildren(...queues.map(row));
    if (!queues.length) {
      body.append(el("tr", {}, el("td", { colSpan: 8, class: "note" },
        "No queues yet: add a job (dockyard add QUEUE NAME) and it shows here.")));
    }
  };
  const refresh = singleFlight(load);
  const timer = setInterval(refresh, 5000);
  refresh();
  return { title: "Queues", dispose: () => clearInterval(timer) };
}
