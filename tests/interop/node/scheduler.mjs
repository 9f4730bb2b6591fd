// Job scheduler calls of Node BullMQ's Queue: upsert, read, remove.
//
// Arguments: common ones plus
//   action: "upsert" | "get" | "remove" | "list"
//   id: the scheduler id (upsert, get, remove)
//   repeat: repeat options for upsert ({"every": 250} or {"pattern": "...", "tz": ...,
//           "limit": n, "startDate": ms, "endDate": ms, "offset": ms, "immediately": bool})
//   template: {"name": ..., "data": {...}, "opts": {...}} for upsert (all optional)
// Output: one line {"event": "done", "action", "job": {id, name, delay, opts} | null,
//   "scheduler": getJobScheduler(id) | null, "removed": bool | null, "schedulers": [...] | null,
//   "now": Date.now() when the line was written}

import { baseOptions, emit, loadBullmq, run } from './common.mjs';

run(async (args) => {
  const { Queue } = await loadBullmq(args.bullmq);
  const queue = new Queue(args.queue, baseOptions(args));
  try {
    let job = null;
    let removed = null;
    let schedulers = null;
    if (args.action === 'upsert') {
      const made = await queue.upsertJobScheduler(args.id, args.repeat, args.template ?? {});
      job = made ? { id: made.id, name: made.name, delay: made.delay, opts: made.opts } : null;
    } else if (args.action === 'remove') {
      removed = await queue.removeJobScheduler(args.id);
    } else if (args.action === 'list') {
      schedulers = await queue.getJobSchedulers();
    } else if (args.action !== 'get') {
      throw new Error(`unknown action ${JSON.stringify(args.action)}`);
    }
    const scheduler = args.id === undefined ? null : (await queue.getJobScheduler(args.id)) ?? null;
    emit({ event: 'done', action: args.action, job, scheduler, removed, schedulers,
      now: Date.now() });
  } finally {
    await queue.close();
  }
});
