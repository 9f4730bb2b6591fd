// The side panels of a queue's view: charts of jobs per minute and of wait times, the
// connected workers, the job schedulers. Reloaded every 15 s, or soon after jobs finish.

import { call, enc, queuePath } from "../lib/api.js";
import { minuteChart, waitChart } from "../lib/charts.js";
import { $, ask, el, fromNow, moment, say, singleFlight } from "../lib/dom.js";

async function loadCharts(queue, alive) {
  const stats = await call(`${queuePath(queue)}/stats?minutes=180`);
  if (!alive()) return;
  $("chart-throughput").replaceChildren(minuteChart(stats));
  $("chart-wait").replaceChildren(waitChart(stats.waits));
}

async function loadWorkers(queue, alive) {
  let workers;
  try {
    ({ workers } = await call(`${queuePath(queue)}/workers`));
  } catch (error) {
    if (error.status !== 501) throw error;
    if (!alive()) return;
    // A store that does not track connections (SQLite): say so plainly.
    $("workers-note").textContent = `This store cannot tell which workers are connected: ${error.message}`;
    $("workers").hidden = true;
    return;
  }
  if (!alive()) return;
  const body = $("workers").tBodies[0];
  $("workers").hidden = workers.length === 0;
  $("workers-note").textContent = workers.length ? "" : "No worker is connected now.";
  body.replaceChildren(...workers.map((w) => el("tr", { dataset: { worker: w.name } },
    el("td", { class: "name", title: w.name }, w.name || "(unnamed)"),
    el("td", {}, w.addr || ""),
    el("td", {}, w.since ? fromNow(w.since) : ""),
    el("td", {}, w.library || "not told"),
  )));
}

function removeScheduler(queue, id, reload) {
  if (!ask(`Remove job scheduler ${id} from queue ${queue}? Its next job goes too.`,
    "remove cancelled")) return;
  call(`${queuePath(queue)}/schedulers/${enc(id)}`, { method: "DELETE" })
    .then(() => say(`removed scheduler ${id}`), (error) => say(error.message, true))
    .then(reload);
}

async function loadSchedulers(queue, reload, alive) {
  let list;
  try {
    ({ schedulers: list } = await call(`${queuePath(queue)}/schedulers`));
  } catch (error) {
    if (error.status !== 501) throw error;
    if (alive()) $("schedulers-box").hidden = true;  // not on this store
    return;
  }
  if (!alive()) return;
  $("schedulers-box").hidden = list.length === 0;
  $("schedulers").tBodies[0].replaceChildren(...list.map((s) => {
    const button = el("button", {}, "Remove");
    button.addEventListener("click", () => removeScheduler(queue, s.id, reload));
    return el("tr", { dataset: { schedulerId: s.id } },
      el("td", { class: "name", title: s.id }, s.id),
      el("td", {}, s.pattern ? s.pattern + (s.tz ? ` (${s.tz})` : "") : `every ${s.every}s`),
      el("td", {}, moment(s.next_run, "none")),
      el("td", { class: "num" }, String(s.iterations) + (s.limit ? ` of ${s.limit}` : "")),
      el("td", { class: "write" }, button));
  }));
}

export function queueSide(queue) {
  let gone = false;
  const alive = () => !gone;
  const reload = singleFlight(async () => {
    if (gone) return;
    await Promise.all([loadCharts(queue, alive), loadWorkers(queue, alive),
      loadSchedulers(queue, reload, alive)]);
  });
  let pending = 0;
  const timer = setInterval(reload, 15000);
  reload();
  return {
    // Jobs finished: redraw the charts within a few seconds (not on every batch).
    soon() { pending = pending || setTimeout(() => { pending = 0; reload(); }, 2000); },
    dispose() { gone = true; clearInterval(timer); clearTimeout(pending); },
  };
}
