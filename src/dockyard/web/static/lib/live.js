// A queue's events (server-sent), handed to the view in batches: at most one batch per
// BATCH_MS, on an animation frame. A burst of 10,000 events a second then costs a few
// redraws a second, not 10,000.

import { API, enc } from "./api.js";

const BATCH_MS = 250;
const KINDS = ["added", "waiting", "active", "progress", "completed", "failed", "delayed",
  "removed", "paused", "resumed", "cleaned", "drained", "stalled", "retries-exhausted",
  "waiting-children", "duplicated", "deduplicated", "log"];
// Jobs remembered per batch: past it only the count grows (the view reloads its page anyway).
const MAX_JOBS = 500;

// Follow `queue`; onBatch({events, kinds: Set, jobs: Map(id -> last event data)}). Returns
// the function that stops following.
export function follow(queue, onBatch) {
  const source = new EventSource(`${API}/queues/${enc(queue)}/events`);
  let batch = null;
  let timer = 0;
  let last = 0;
  const flush = () => {
    timer = 0;
    const ready = batch;
    batch = null;
    last = performance.now();
    if (ready) onBatch(ready);
  };
  const take = (kind, message) => {
    if (!batch) batch = { events: 0, kinds: new Set(), jobs: new Map() };
    batch.events += 1;
    batch.kinds.add(kind);
    if (batch.jobs.size < MAX_JOBS) {
      try {
        const data = JSON.parse(message.data);
        if (data.job_id) batch.jobs.set(data.job_id, { kind, ...data });
      } catch { /* a malformed event: counted, not kept */ }
    }
    if (!timer) {
      const wait = Math.max(0, BATCH_MS - (performance.now() - last));
      timer = setTimeout(() => requestAnimationFrame(flush), wait);
    }
  };
  for (const kind of KINDS) source.addEventListener(kind, (message) => take(kind, message));
  return () => {
    source.close();
    clearTimeout(timer);
    batch = null;
  };
}
