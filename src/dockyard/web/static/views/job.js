// A job's view: state, progress, attempts, worker, timestamps (with relative times), data
// and options (copyable), return value, failure with its stack trace, logs (live while it
// runs), its flow, and the actions: retry, promote, remove, add a job like this.

import { call, jobPath } from "../lib/api.js";
import { $, ask, clone, moment, say, singleFlight, stateTag } from "../lib/dom.js";
import { follow } from "../lib/live.js";
import { go } from "../lib/router.js";
import { openAddJob } from "./addjob.js";
import { loadFlow } from "./flow.js";

const pretty = (value) => JSON.stringify(value ?? null, null, 2);

function show(job) {
  $("job-title").textContent = `Job ${job.id} (${job.name})`;
  $("job-title").title = job.name;
  $("job-state-tag").replaceChildren(stateTag(job.state));
  $("job-state").textContent = job.state;
  const numeric = typeof job.progress === "number";
  $("job-progress").value = numeric ? job.progress : 0;
  $("job-progress-text").textContent = numeric ? `${job.progress}%` : pretty(job.progress);
  $("job-attempts").textContent = `${job.attempts_made} made, ${job.attempts_started} started` +
    (job.opts.attempts ? ` (of ${job.opts.attempts} allowed)` : "");
  $("job-worker").textContent = job.processed_by || (job.processed_on ? "not recorded" : "none yet");
  $("job-added").textContent = moment(job.timestamp);
  $("job-delay").textContent = job.delay ? `${job.delay}s` : "none";
  $("job-processed").textContent = moment(job.processed_on);
  $("job-finished").textContent = moment(job.finished_on);
  $("job-data").textContent = pretty(job.data);
  $("job-opts").textContent = pretty(job.opts);
  $("job-return").textContent = job.state === "completed" ? pretty(job.return_value)
    : "(not finished)";
  $("job-failure").textContent = [job.failed_reason || "", ...(job.stacktrace || [])]
    .filter(Boolean).join("\n") || "(none)";
  $("job-logs").textContent = (job.logs || []).join("\n") || "(no log lines)";
  $("job-retry").disabled = !["failed", "completed"].includes(job.state);
  $("job-promote").disabled = job.state !== "delayed";
  $("job-remove").disabled = job.state === "active";
}

async function copy(id, button) {
  const text = $(id).textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {  // no clipboard API (plain http on another host): select it for Ctrl-C
    const range = document.createRange();
    range.selectNodeContents($(id));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
}

export function jobView(root, route) {
  root.append(clone("tpl-job"));
  const { queue, id } = route;
  let gone = false;
  let job = null;
  const alive = () => !gone;
  const load = async () => {
    try {
      job = await call(jobPath(queue, id));
    } catch (error) {
      if (gone) return; // the view was left while this read was on its way: say nothing
      if (error.status !== 404) throw error;
      $("job-title").textContent = `Job ${id} is not in queue ${queue} (removed, or never added)`;
      $("job-panel").dataset.missing = "true";
      return;
    }
    if (gone) return;
    show(job);
    await loadFlow(queue, id, alive);
  };
  const refresh = singleFlight(load);
  const act = async (what, request) => {
    try {
      await request();
      say(what);
    } catch (error) {
      say(`${what} failed: ${error.message}`, true);
    }
    await refresh();
  };
  $("job-retry").addEventListener("click", () =>
    act("retried", () => call(`${jobPath(queue, id)}/retry`, { method: "POST" })));
  $("job-promote").addEventListener("click", () =>
    act("promoted", () => call(`${jobPath(queue, id)}/promote`, { method: "POST" })));
  $("job-remove").addEventListener("click", async () => {
    if (!ask(`Remove job ${id} (${job?.name ?? ""}) from queue ${queue}?`, "remove cancelled")) return;
    try {
      await call(jobPath(queue, id), { method: "DELETE" });
    } catch (error) {
      say(`remove failed: ${error.message}`, true);
      return;
    }
    go({ view: "queue", queue, state: job?.state || "waiting", page: 1 }, { replace: true });
    say(`removed job ${id}`);
  });
  $("job-like").addEventListener("click", () => {
    if (job) openAddJob(queue, { name: job.name, data: job.data, opts: job.add_opts });
  });
  for (const button of root.querySelectorAll("button.copy")) {
    button.addEventListener("click", () => copy(button.dataset.copy, button));
  }
  // Live: this job's events reload it (batched); logs have no event, so a running job is
  // also re-read every 2 s.
  const stop = follow(queue, (batch) => { if (batch.jobs.has(id)) refresh(); });
  const timer = setInterval(() => { if (job?.state === "active") refresh(); }, 2000);
  refresh();
  return {
    title: `${queue} · job ${id}`,
    dispose() { gone = true; stop(); clearInterval(timer); },
  };
}
