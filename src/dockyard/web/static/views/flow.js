// A job's flow: its parent (if any) and the tree of its children with their states, each a
// link to that job's view.

import { call, jobPath } from "../lib/api.js";
import { $, el, stateTag } from "../lib/dom.js";
import { link } from "../lib/router.js";

function flowItem(node, current = false) {
  const text = `${node.name} (${node.queue}:${node.id})`;
  const label = current ? el("span", { class: "current" }, text)
    : link({ view: "job", queue: node.queue, id: node.id }, text,
      { dataset: { queue: node.queue, jobId: node.id } });
  const item = el("li", { dataset: { jobId: node.id, state: node.state } }, label,
    stateTag(node.state));
  if (node.children.length) item.append(el("ul", {}, ...node.children.map((c) => flowItem(c))));
  return item;
}

// Fill #job-flow-box for job `id` of `queue`; hidden for a job outside any flow, or on a
// store without flows (501). `alive()` is false once the view is left.
export async function loadFlow(queue, id, alive) {
  let root;
  try {
    root = await call(`${jobPath(queue, id)}/flow?depth=5`);
  } catch {
    if (alive()) $("job-flow-box").hidden = true;
    return;
  }
  if (!alive()) return;
  if (!root.parent && root.children.length === 0) { $("job-flow-box").hidden = true; return; }
  const parent = $("job-parent");
  parent.replaceChildren();
  parent.hidden = !root.parent;
  if (root.parent) {
    const { queue: pq, id: pid } = root.parent;
    parent.append("Parent: ", link({ view: "job", queue: pq, id: pid }, `${pq}:${pid}`,
      { dataset: { queue: pq, jobId: pid } }));
    try {
      const job = await call(jobPath(pq, pid));
      parent.append(` ${job.name}`, stateTag(job.state));
    } catch (error) {
      parent.append(stateTag(error.status === 404 ? "gone" : "unavailable"));
    }
  }
  $("job-flow").replaceChildren(flowItem(root, true));
  $("job-flow-box").hidden = false;
}
