// dockyard dashboard: plain JavaScript over the JSON API (no build step).
"use strict";

const API = "api/v1";
const PAGE = 20;
const STATES = ["waiting", "active", "delayed", "prioritized", "completed", "failed", "paused"];
const view = { queue: null, state: "waiting", start: 0, job: null, source: null };
const lastTotals = new Map(); // queue -> [time, completed + failed]

const $ = (id) => document.getElementById(id);

async function call(path, options = {}) {
  const response = await fetch(`${API}${path}`, { credentials: "same-origin", ...options });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.detail || `${response.status} ${response.statusText}`);
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

async function loadQueues() {
  const { queues } = await call("/queues");
  const body = $("queues").tBodies[0];
  body.replaceChildren();
  const now = Date.now() / 1000;
  for (const q of queues) {
    const row = body.insertRow();
    row.className = "clickable";
    row.dataset.queue = q.name;
    cell(row, q.name + (q.paused ? " (paused)" : ""), q.paused ? "paused" : "");
    for (const s of ["waiting", "active", "delayed", "prioritized", "completed", "failed"]) {
      const n = s === "waiting" ? q.counts.waiting + q.counts.paused : q.counts[s];
      cell(row, String(n), "num").dataset.state = s;
    }
    const done = q.counts.completed + q.counts.failed;
    const before = lastTotals.get(q.name);
    const rate = before ? Math.max(0, (done - before[1]) / (now - before[0])) : 0;
    lastTotals.set(q.name, [now, done]);
    cell(row, rate.toFixed(1), "num");
    cell(row, "open");
    row.addEventListener("click", () => openQueue(q.name));
  }
}

function openQueue(name) {
  view.queue = name;
  view.start = 0;
  $("jobs-panel").hidden = false;
  $("jobs-title").textContent = `Queue ${name}`;
  follow(name);
  return loadJobs();
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
  const body = $("jobs").tBodies[0];
  body.replaceChildren();
  for (const job of page.jobs) {
    const row = body.insertRow();
    row.className = "clickable";
    row.dataset.jobId = job.id;
    cell(row, job.id);
    cell(row, job.name);
    cell(row, String(job.attempts_made), "num");
    cell(row, typeof job.progress === "number" ? `${job.progress}%` : JSON.stringify(job.progress));
    cell(row, job.failed_reason ?? JSON.stringify(job.return_value ?? null),
      job.failed_reason ? "failed" : "");
    row.addEventListener("click", () => openJob(job.id));
  }
  $("page").textContent = ` ${page.total ? view.start + 1 : 0}–${view.start + page.jobs.length}` +
    ` of ${page.total} `;
  $("prev").disabled = view.start === 0;
  $("next").disabled = view.start + PAGE >= page.total;
  const { queues } = await call("/queues");
  const mine = queues.find((q) => q.name === view.queue);
  $("pause-resume").textContent = mine && mine.paused ? "Resume queue" : "Pause queue";
}

async function openJob(id) {
  view.job = id;
  const q = encodeURIComponent(view.queue);
  const job = await call(`/queues/${q}/jobs/${encodeURIComponent(id)}`);
  $("job-panel").hidden = false;
  $("job-title").textContent = `Job ${job.id} (${job.name})`;
  $("job-state").textContent = job.state;
  $("job-attempts").textContent = `${job.attempts_made} made, ${job.attempts_started} started`;
  $("job-progress").value = typeof job.progress === "number" ? job.progress : 0;
  $("job-data").textContent = JSON.stringify(job.data, null, 2);
  $("job-opts").textContent = JSON.stringify(job.opts, null, 2);
  $("job-return").textContent = JSON.stringify(job.return_value, null, 2);
  $("job-failure").textContent = [job.failed_reason || "", ...(job.stacktrace || [])].join("\n");
  $("job-logs").textContent = (job.logs || []).join("\n");
  $("job-retry").disabled = !["failed", "completed"].includes(job.state);
  $("job-promote").disabled = job.state !== "delayed";
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
    if (view.queue) await loadJobs();
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
$("job-remove").addEventListener("click", () => act("removed", async () => {
  await call(jobPath(), { method: "DELETE" });
  view.job = null;
  $("job-panel").hidden = true;
}));
$("pause-resume").addEventListener("click", () => {
  const verb = $("pause-resume").textContent.startsWith("Pause") ? "pause" : "resume";
  act(`${verb}d`, () => call(`/queues/${encodeURIComponent(view.queue)}/${verb}`, { method: "POST" }));
});
$("clean").addEventListener("click", () => act("cleaned", () =>
  call(`/queues/${encodeURIComponent(view.queue)}/clean?state=${view.state}`, { method: "POST" })));

refresh();
setInterval(refresh, 5000);
