// A queue's view: counts per state as tabs, one page of the state's jobs (newest first),
// select several and retry / promote / remove them, retry or promote a whole state,
// clean by state and age, pause and resume. Live from the queue's events, batched.

import { call, enc, queuePath, readOnly } from "../lib/api.js";
import { $, ask, clone, el, firstLine, fromNow, progressBar, say, singleFlight, when }
  from "../lib/dom.js";
import { follow } from "../lib/live.js";
import { STATES, go, href, link } from "../lib/router.js";
import { openAddJob } from "./addjob.js";
import { queueSide } from "./queueside.js";

// States whose jobs have not run yet: cleaning them loses work, so the question says so.
const UNRUN = ["waiting", "paused", "delayed", "prioritized"];
const CLEANABLE = ["completed", "failed", "delayed", "prioritized", "waiting", "paused"];
// Tabs shown only when they hold jobs (or are open).
const RARE = ["waiting-children", "paused"];

const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;

function result(job) {
  if (job.failed_reason) return firstLine(job.failed_reason);
  if (job.return_value_truncated) return "(large: open the job)";
  if (job.state !== "completed") return "";
  return JSON.stringify(job.return_value ?? null);
}

function jobRow(job, view) {
  const { queue } = view.route;
  const tr = el("tr", { dataset: { jobId: job.id } });
  if (!readOnly) {
    const box = el("input", { type: "checkbox", checked: view.selected.has(job.id),
      ariaLabel: `select job ${job.id}` });
    box.addEventListener("change", () => {
      if (box.checked) view.selected.add(job.id); else view.selected.delete(job.id);
      view.syncSelection();
    });
    tr.append(el("td", { class: "write" }, box));
  }
  tr.append(
    el("td", {}, link({ view: "job", queue, id: job.id }, job.id)),
    el("td", { class: "name", title: job.name }, job.name),
    el("td", { title: when(job.timestamp) }, job.timestamp ? fromNow(job.timestamp) : ""),
    el("td", { class: "num hide-narrow" }, String(job.attempts_made)),
    el("td", { class: "hide-narrow" }, progressBar(job.progress)),
    el("td", { class: job.failed_reason ? "reason failed" : "reason",
      title: job.failed_reason || "" }, result(job)),
  );
  return tr;
}

function renderTabs(view) {
  const { route, counts } = view;
  const nav = $("states");
  nav.replaceChildren();
  for (const s of STATES) {
    const n = counts ? counts[s] ?? 0 : null;
    if (RARE.includes(s) && !n && s !== route.state) continue;
    const tab = link({ ...route, state: s, page: 1, name: "" }, s, { dataset: { state: s } });
    if (s === route.state) { tab.className = "current"; tab.setAttribute("aria-current", "page"); }
    if (n !== null) tab.append(el("span", { class: "count" }, n.toLocaleString()));
    nav.append(tab);
  }
}

async function loadCounts(view) {
  const found = await call(queuePath(view.route.queue));
  if (view.gone) return;
  view.counts = found.counts;
  view.paused = found.paused;
  renderTabs(view);
  $("queue-paused").hidden = !found.paused;
  $("pause-resume").textContent = found.paused ? "Resume queue" : "Pause queue";
}

async function loadJobs(view) {
  const { queue, state, page, size, name } = view.route;
  const start = (page - 1) * size;
  let jobs;
  let note = "";
  if (name) {
    const found = await call(`${queuePath(queue)}/search?name=${enc(name)}&state=${state}&limit=100`);
    jobs = found.jobs;
    view.total = jobs.length;
    note = `${plural(jobs.length, "job")} named like “${name}” among the newest ` +
      `${found.scanned.toLocaleString()} ${state}${found.complete ? "" : " (not all were searched)"}`;
  } else {
    const found = await call(`${queuePath(queue)}/jobs?state=${state}&start=${start}` +
      `&end=${start + size - 1}`);
    jobs = found.jobs;
    view.total = found.total;
  }
  if (view.gone || view.route.state !== state) return;  // moved on
  view.jobs = jobs;
  const onPage = new Set(jobs.map((j) => j.id));
  for (const id of [...view.selected]) if (!onPage.has(id)) view.selected.delete(id);
  $("jobs").tBodies[0].replaceChildren(...jobs.map((job) => jobRow(job, view)));
  $("filter-note").hidden = !note;
  $("filter-note").textContent = note;
  const shown = name ? 0 : start;
  $("page").textContent = ` ${jobs.length ? shown + 1 : 0}–${shown + jobs.length} of ` +
    `${view.total.toLocaleString()} `;
  const pager = (id, target, enabled) => {
    $(id).href = href({ ...view.route, page: target });
    $(id).dataset.route = "";
    $(id).setAttribute("aria-disabled", String(!enabled));
  };
  pager("prev", page - 1, !name && page > 1);
  pager("next", page + 1, !name && start + size < view.total);
  $("page-size").value = String(size);
  $("retry-all").hidden = state !== "failed";
  $("promote-all").hidden = state !== "delayed";
  $("clean").disabled = !CLEANABLE.includes(state) || view.total === 0;
  view.syncSelection();
}

async function bulk(view, action, verb) {
  const ids = [...view.selected];
  const { queue } = view.route;
  if (action === "remove" && !ask(`Remove ${plural(ids.length, "selected job")} from queue ` +
    `${queue}? This cannot be undone.`, "remove cancelled")) return;
  try {
    const out = await call(`${queuePath(queue)}/bulk`, { method: "POST", json: { action, ids } });
    const failed = out.errors.length ? `; ${out.errors.length} not: ${out.errors[0].detail}` : "";
    say(`${verb} ${plural(out.done.length, "job")}${failed}`, out.errors.length > 0);
  } catch (error) {
    say(`${action} failed: ${error.message}`, true);
  }
  view.selected.clear();
  await view.refresh();
}

async function wholeState(view, path, question, verb, cancelled) {
  if (!ask(question, cancelled)) return;
  try {
    const out = await call(`${queuePath(view.route.queue)}${path}`, { method: "POST" });
    const n = out.moved ?? (Array.isArray(out.removed) ? out.removed.length : out.removed);
    say(`${verb}: ${plural(n, "job")}`);
  } catch (error) {
    say(`${verb} failed: ${error.message}`, true);
  }
  await view.refresh();
}

function clean(view) {
  const { queue, state } = view.route;
  const age = Number($("clean-age").value);
  const ageText = $("clean-age").selectedOptions[0].textContent;
  const warning = UNRUN.includes(state) ? " They have not run yet and cannot be recovered." : "";
  const what = age ? `${state} jobs older than ${ageText} (of ${view.total.toLocaleString()})`
    : plural(view.total, `${state} job`);
  wholeState(view, `/clean?state=${state}&grace=${age}`,
    `Remove ${what} from queue ${queue}?${warning}`, `cleaned ${state}`, "clean cancelled");
}

function wire(view) {
  const { queue } = view.route;
  $("bulk-retry").addEventListener("click", () => bulk(view, "retry", "retried"));
  $("bulk-promote").addEventListener("click", () => bulk(view, "promote", "promoted"));
  $("bulk-remove").addEventListener("click", () => bulk(view, "remove", "removed"));
  $("retry-all").addEventListener("click", () => {
    const n = view.counts?.failed ?? view.total;
    wholeState(view, "/retry?state=failed",
      `Retry all ${plural(n, "failed job")} of queue ${queue}?`, "retried", "retry cancelled");
  });
  $("promote-all").addEventListener("click", () => {
    const n = view.counts?.delayed ?? view.total;
    wholeState(view, "/promote", `Run all ${plural(n, "delayed job")} of queue ${queue} now?`,
      "promoted", "promote cancelled");
  });
  $("clean").addEventListener("click", () => clean(view));
  $("pause-resume").addEventListener("click", async () => {
    const verb = view.paused ? "resume" : "pause";
    try {
      await call(`${queuePath(queue)}/${verb}`, { method: "POST" });
      say(`${verb}d`);
    } catch (error) {
      say(`${verb} failed: ${error.message}`, true);
    }
    await view.refresh();
  });
  $("add-job-open").addEventListener("click", () => openAddJob(queue));
  $("select-all").addEventListener("change", () => {
    for (const job of view.jobs) {
      if ($("select-all").checked) view.selected.add(job.id); else view.selected.delete(job.id);
    }
    for (const box of $("jobs").tBodies[0].querySelectorAll("input[type=checkbox]")) {
      box.checked = $("select-all").checked;
    }
    view.syncSelection();
  });
  $("page-size").addEventListener("change", () => {
    go({ ...view.route, size: Number($("page-size").value), page: 1 });
  });
}

export function queueView(root, route) {
  root.append(clone("tpl-queue"));
  $("queue-title").textContent = route.queue;
  $("queue-title").title = route.queue;
  const view = { route, selected: new Set(), jobs: [], total: 0, counts: null, paused: false };
  view.syncSelection = () => {
    const n = view.selected.size;
    const { state } = view.route;
    $("bulk-retry").disabled = !n || !["failed", "completed"].includes(state);
    $("bulk-promote").disabled = !n || state !== "delayed";
    $("bulk-remove").disabled = !n || state === "active";
    $("select-all").checked = n > 0 && n === view.jobs.length;
  };
  view.refresh = singleFlight(() => Promise.all([loadCounts(view), loadJobs(view)]));
  wire(view);
  const side = queueSide(route.queue);
  const stop = follow(route.queue, (batch) => {
    view.refresh();
    if (batch.kinds.has("completed") || batch.kinds.has("failed")) side.soon();
  });
  const timer = setInterval(view.refresh, 10000);  // in case the event stream drops
  view.refresh();
  return {
    title: `${route.queue} · ${route.state}`,
    // Another page, state or size of the same queue: the same view, a new list.
    update(next) {
      if (next.view !== "queue" || next.queue !== route.queue) return false;
      if (next.state !== view.route.state) view.selected.clear();
      view.route = next;
      renderTabs(view);
      view.refresh();
      return true;
    },
    dispose() { view.gone = true; stop(); side.dispose(); clearInterval(timer); },
  };
}
