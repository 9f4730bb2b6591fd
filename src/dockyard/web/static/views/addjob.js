// The "add job" form (a <dialog>): name, data and options as JSON, checked as you type
// (the server checks again and its answer is shown), then the new job's view opens.

import { call, queuePath } from "../lib/api.js";
import { $, say } from "../lib/dom.js";
import { go } from "../lib/router.js";

let target = null;

// What is wrong with the form, or "" when it can be sent; `parsed` gets the values.
function problem(parsed) {
  if (!$("add-name").value.trim()) return "Give the job a name.";
  try {
    parsed.data = JSON.parse($("add-data").value || "null");
  } catch (error) {
    return `Data is not valid JSON: ${error.message}`;
  }
  try {
    parsed.opts = JSON.parse($("add-opts").value || "{}");
  } catch (error) {
    return `Options are not valid JSON: ${error.message}`;
  }
  if (parsed.opts === null || typeof parsed.opts !== "object" || Array.isArray(parsed.opts)) {
    return "Options must be a JSON object, such as {\"delay\": 60}.";
  }
  return "";
}

function check() {
  const why = problem({});
  $("add-error").textContent = why;
  $("add-submit").disabled = Boolean(why);
  return why;
}

// Open the form for `queue`, prefilled from `like` ({name, data, opts}) if given.
export function openAddJob(queue, like = null) {
  target = queue;
  $("add-job-queue").textContent = queue;
  $("add-name").value = like?.name ?? "";
  $("add-data").value = JSON.stringify(like?.data ?? {}, null, 2);
  // The server gives a job's options as this form takes them, without its id.
  $("add-opts").value = JSON.stringify(like?.opts ?? {}, null, 2);
  check();
  $("add-job").showModal();
}

async function submit(event) {
  event.preventDefault();
  const parsed = {};
  if (check()) return;
  problem(parsed);
  const queue = target;
  try {
    const { id } = await call(`${queuePath(queue)}/jobs`, {
      method: "POST", json: { name: $("add-name").value.trim(), data: parsed.data, opts: parsed.opts },
    });
    $("add-job").close();
    go({ view: "job", queue, id });
    say(`added job ${id}`);
  } catch (error) {
    $("add-error").textContent = `Not added: ${error.message}`;
  }
}

for (const id of ["add-name", "add-data", "add-opts"]) $(id).addEventListener("input", check);
$("add-job-form").addEventListener("submit", submit);
$("add-cancel").addEventListener("click", () => $("add-job").close());
