// Adds jobs with Node BullMQ's Queue.add (or addBulk) and prints their ids.
//
// Arguments: common ones plus
//   jobs: [{"name": "n", "data": {...}, "opts": {...BullMQ spelling, ms...}}, ...]
//   bulk: true to use Queue.addBulk (default false: one Queue.add per job)
// Output: {"event": "added", "ids": ["1", "2", ...]}

import { baseOptions, emit, loadBullmq, run } from './common.mjs';

run(async (args) => {
  const { Queue } = await loadBullmq(args.bullmq);
  const queue = new Queue(args.queue, baseOptions(args));
  try {
    const specs = args.jobs ?? [];
    let jobs;
    if (args.bulk) {
      jobs = await queue.addBulk(specs.map((s) => ({ name: s.name, data: s.data ?? {}, opts: s.opts })));
    } else {
      jobs = [];
      for (const s of specs) jobs.push(await queue.add(s.name, s.data ?? {}, s.opts));
    }
    emit({ event: 'added', ids: jobs.map((job) => job.id) });
  } finally {
    await queue.close();
  }
});
