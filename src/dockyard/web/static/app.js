// dockyard dashboard: plain JavaScript over the JSON API (no build step).
"use strict";

const API = "api/v1";
const PAGE = 20;
const STATES = ["waiting", "active", "delayed", "prioritized", "completed", "failed", "paused"];
// States whose jobs have not run yet: cleaning them loses work, so the question says so.
const UNRUN = ["waiting", "paused", "delayed", "prioritized"];
const view = {
  queue: null, state: "waiting", start: 0, total: 0, job: null, jobName: "", source: null,
};

const $ = (id) => document.getElementById(id);

async function call(path, options = {}) {
  const method = options.method || "GET";
  // Writes carry X-Dockyard: the server refuses writes without it (or JSON), which other
  // sites cannot make a browser send.
  const headers = method === "GET" ? {} : { "X-Dockyard": "1" };
  const response = await fetch(`${API}${path}`, { credentials: "same-origin", ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.detail || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "failed" : "";
}

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}

// "in 5m" / "3h ago": how far an epoch time (seconds) is from now.
function fromNow(seconds) {
  const delta = Math.round(seconds - Date.now() / 1000);
  const size = Math.abs(delta);
  const text = size >= 86400 ? `${Math.floor(size / 86400)}d` : size >= 3600
    ? `${Math.floor(size / 3600)}h` : size >= 60 ? `${Math.floor(size / 60)}m` : `${size}s`;
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}

async function loadQueues() {
  const { queues } = await call("/queues");
  const body = $("queues").tBodies[0];
  body.replaceChildren();
  for (const q of queues) {
    const row = body.insertRow();
    row.dataset.queue = q.name;
    const name = cell(row, q.name + (q.paused ? " (paused)" : ""), q.paused ? "name paused" : "name");
    name.title = q.name;
    if (q.error) {  // a queue this server cannot open (its name, say): show why
      const why = cell(row, q.error, "failed");
      why.colSpan = 8;
      continue;
    }
    row.className = "clickable";
    for (const s of ["waiting", "active", "delayed", "prioritized", "completed", "failed"]) {
      const n = s === "waiting" ? q.counts.waiting + q.counts.paused : q.counts[s];
      cell(row, String(n), "num").dataset.state = s;
    }
    cell(row, (q.jobs_per_second ?? 0).toFixed(1), "num rate");
    const link = document.createElement("a");
    link.href = "#";
    link.textContent = "open";
    row.insertCell().append(link);
    row.addEventListener("click", (event) => { event.preventDefault(); openQueue(q.name); });
  }
}

function openQueue(name) {
  view.queue = name;
  view.start = 0;
  $("jobs-panel").hidden = false;
  $("jobs-title").textContent = `Queue ${name}`;
  $("jobs-title").title = name;
  follow(name);
  return Promise.all([loadJobs(), loadSchedulers()]);
}

function result(job) {
  if (job.failed_reason) return job.failed_reason;
  if (job.return_value_truncated) return "(large: open the job)";
  if (job.state !== "completed") return "";
  return JSON.stringify(job.return_value ?? null);
}

async function loadJobs() {
  const nav = $("states");
  nav.replaceChildren();
  for (const s of STATES) {
    const b = document.createElement("button");
    b.textContent = s;
    b.dataset.state = s;
    if (s === view.state) b.className = "current";
    b.addEventListener("click", () => { view.state = s; view.start = 0; loadJobs(); });
    nav.append(b);
  }
  const q = encodeURIComponent(view.queue);
  const page = await call(
    `/queues/${q}/jobs?state=${view.state}&start=${view.start}&end=${view.start + PAGE - 1}`);
  view.total = page.total;
  const body = $("jobs").tBodies[0];
  body.replaceChildren();
  for (const job of page.jobs) {
    const row = body.insertRow();
    row.className = "clickable";
    row.dataset.jobId = job.id;
    cell(row, job.id);
    cell(row, job.name, "name").title = job.name;
    cell(row, when(job.timestamp));
    cell(row, String(job.attempts_made), "num");
    cell(row, typeof job.progress === "number" ? `${job.progress}%` : JSON.stringify(job.progress));
    cell(row, result(job), job.failed_reason ? "failed" : "");
    row.addEventListener("click", () => openJob(job.id, true));
  }
  $("page").textContent = ` ${page.total ? view.start + 1 : 0}–${view.start + page.jobs.length}` +
    ` of ${page.total} `;
  $("prev").disabled = view.start === 0;
  $("next").disabled = view.start + PAGE >= page.total;
  // Active jobs belong to running workers: no one-click clean for them.
  $("clean").disabled = view.state === "active" || page.total === 0;
  const { queues } = await call("/queues");
  const mine = queues.find((q) => q.name === view.queue);
  $("pause-resume").textContent = mine && mine.paused ? "Resume queue" : "Pause queue";
}

async function loadSchedulers() {
  const box = $("schedulers-box");
  const queue = view.queue;
  let list;
  try {
    ({ schedulers: list } = await call(`/queues/${encodeURIComponent(queue)}/schedulers`));
  } catch (error) {
    if (error.status === 501) { box.hidden = true; return; }  // a store without schedulers
    throw error;
  }
  if (queue !== view.queue) return;
  const body = $("schedulers").tBodies[0];
  body.replaceChildren();
  box.hidden = list.length === 0;
  for (const s of list) {
    const row = body.insertRow();
    row.dataset.schedulerId = s.id;
    cell(row, s.id, "name").title = s.id;
    cell(row, s.pattern ? s.pattern + (s.tz ? ` (${s.tz})` : "") : `every ${s.every}s`);
    cell(row, s.next_run ? `${when(s.next_run)} (${fromNow(s.next_run)})` : "none");
    cell(row, String(s.iterations) + (s.limit ? ` of ${s.limit}` : ""), "num");
    const button = document.createElement("button");
    button.textContent = "Remove";
    button.addEventListener("click", () => removeScheduler(queue, s.id));
    row.insertCell().append(button);
  }
}

function removeScheduler(queue, id) {
  if (!confirm(`Remove job scheduler ${id} from queue ${queue}? Its next job goes too.`)) {
    say("remove cancelled");
    return;
  }
  act(`removed scheduler ${id}`, () => call(
    `/queues/${encodeURIComponent(queue)}/schedulers/${encodeURIComponent(id)}`,
    { method: "DELETE" }));
}

// A link that opens job `id` of `queue` (switching queues if need be).
function jobLink(queue, id, text) {
  const link = document.createElement("a");
  link.href = "#";
  link.textContent = text;
  link.dataset.queue = queue;
  link.dataset.jobId = id;
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    if (queue !== view.queue) await openQueue(queue);
    await openJob(id, true);
  });
  return link;
}

function stateTag(state) {
  const tag = document.createElement("span");
  tag.className = `state ${state}`;
  tag.textContent = state;
  return tag;
}

function flowItem(node, current = false) {
  const item = document.createElement("li");
  item.dataset.jobId = node.id;
  item.dataset.state = node.state;
  const text = `${node.name} (${node.queue}:${node.id})`;
  const label = current ? document.createElement("span") : jobLink(node.queue, node.id, text);
  label.textContent = text;
  if (current) label.className = "current";
  item.append(label, stateTag(node.state));
  if (node.children.length) {
    const list = document.createElement("ul");
    for (const child of node.children) list.append(flowItem(child));
    item.append(list);
  }
  return item;
}

// The job's flow: its parent (if any) and the tree of its children, with their states.
async function loadFlow(queue, id) {
  const box = $("job-flow-box");
  let root;
  try {
    root = await call(
      `/queues/${encodeURIComponent(queue)}/jobs/${encodeURIComponent(id)}/flow?depth=5`);
  } catch (error) {
    box.hidden = true;  // a store without flows (501), or the job is gone
    return;
  }
  if (view.job !== id || view.queue !== queue) return;
  if (!root.parent && root.children.length === 0) { box.hidden = true; return; }
  const parent = $("job-parent");
  parent.replaceChildren();
  parent.hidden = !root.parent;
  if (root.parent) {
    const { queue: pq, id: pid } = root.parent;
    parent.append("Parent: ", jobLink(pq, pid, `${pq}:${pid}`));
    try {
      const job = await call(`/queues/${encodeURIComponent(pq)}/jobs/${encodeURIComponent(pid)}`);
      parent.append(` ${job.name}`, stateTag(job.state));
    } catch (error) {
      parent.append(stateTag(error.status === 404 ? "gone" : "unavailable"));
    }
  }
  $("job-flow").replaceChildren(flowItem(root, true));
  box.hidden = false;
}

function closeJob() {
  view.job = null;
  $("job-panel").hidden = true;
}

async function openJob(id, scroll = false) {
  view.job = id;
  const q = encodeURIComponent(view.queue);
  let job;
  try {
    job = await call(`/queues/${q}/jobs/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error.status === 404 && view.job === id) { closeJob(); return; }  // it is gone
    throw error;
  }
  $("job-panel").hidden = false;
  view.jobName = job.name;
  $("job-title").textContent = `Job ${job.id} (${job.name})`;
  $("job-state").textContent = job.state;
  $("job-attempts").textContent = `${job.attempts_made} made, ${job.attempts_started} started`;
  $("job-added").textContent = when(job.timestamp);
  $("job-processed").textContent = when(job.processed_on) || "not yet";
  $("job-finished").textContent = when(job.finished_on) || "not yet";
  $("job-progress").value = typeof job.progress === "number" ? job.progress : 0;
  $("job-data").textContent = JSON.stringify(job.data, null, 2);
  $("job-opts").textContent = JSON.stringify(job.opts, null, 2);
  $("job-return").textContent = job.state === "completed"
    ? JSON.stringify(job.return_value ?? null, null, 2) : "(not finished)";
  $("job-failure").textContent = [job.failed_reason || "", ...(job.stacktrace || [])].join("\n");
  $("job-logs").textContent = (job.logs || []).join("\n");
  $("job-retry").disabled = !["failed", "completed"].includes(job.state);
  $("job-promote").disabled = job.state !== "delayed";
  await loadFlow(view.queue, id);
  if (scroll) $("job-panel").scrollIntoView({ block: "start" });
}

async function act(what, request) {
  try {
    await request();
    say(what);
  } catch (error) {
    say(`${what} failed: ${error.message}`, true);
  }
  await refresh();
}

function follow(name) {
  if (view.source) view.source.close();
  const source = new EventSource(`${API}/queues/${encodeURIComponent(name)}/events`);
  let pending = null;
  const soon = () => { pending = pending || setTimeout(() => { pending = null; refresh(); }, 250); };
  for (const kind of ["added", "active", "progress", "completed", "failed", "waiting", "delayed",
    "removed", "paused", "resumed", "cleaned"]) {
    source.addEventListener(kind, (message) => {
      const data = JSON.parse(message.data);
      if (view.job && data.job_id === view.job && kind === "progress") {
        $("job-progress").value = typeof data.progress === "number" ? data.progress : 0;
      }
      soon();
    });
  }
  view.source = source;
}

async function refresh() {
  try {
    await loadQueues();
    if (view.queue) await Promise.all([loadJobs(), loadSchedulers()]);
    if (view.job) await openJob(view.job);
  } catch (error) {
    say(error.message, true);
  }
}

$("prev").addEventListener("click", () => { view.start = Math.max(0, view.start - PAGE); loadJobs(); });
$("next").addEventListener("click", () => { view.start += PAGE; loadJobs(); });
const jobPath = () => `/queues/${encodeURIComponent(view.queue)}/jobs/${encodeURIComponent(view.job)}`;
$("job-retry").addEventListener("click", () => act("retried", () => call(`${jobPath()}/retry`, { method: "POST" })));
$("job-promote").addEventListener("click", () => act("promoted", () => call(`${jobPath()}/promote`, { method: "POST" })));
$("job-remove").addEventListener("click", () => {
  const id = view.job;
  if (!confirm(`Remove job ${id} (${view.jobName}) from queue ${view.queue}?`)) {
    say("remove cancelled");
    return;
  }
  act(`removed job ${id}`, async () => {
    await call(`/queues/${encodeURIComponent(view.queue)}/jobs/${encodeURIComponent(id)}`,
      { method: "DELETE" });
    if (view.job === id) closeJob();
  });
});
$("pause-resume").addEventListener("click", () => {
  const verb = $("pause-resume").textContent.startsWith("Pause") ? "pause" : "resume";
  act(`${verb}d`, () => call(`/queues/${encodeURIComponent(view.queue)}/${verb}`, { method: "POST" }));
});
$("clean").addEventListener("click", () => {
  const { queue, state, total } = view;
  const warning = UNRUN.includes(state) ? " They have not run yet and cannot be recovered." : "";
  if (!confirm(`Remove ${total} ${state} job${total === 1 ? "" : "s"} from queue ${queue}?${warning}`)) {
    say("clean cancelled");
    return;
  }
  act(`cleaned ${state}`, () =>
    call(`/queues/${encodeURIComponent(queue)}/clean?state=${state}`, { method: "POST" }));
});

refresh();
setInterval(refresh, 5000);
