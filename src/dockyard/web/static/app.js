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
  return loadJobs();
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
