// Runs one Queue admin call the way Node BullMQ does it.
//
// Arguments: common ones plus
//   action: "pause" | "resume" | "counts" | "metrics"
// Output lines: {"event": "done", "action", "paused": bool, "counts": {...getJobCounts()},
//   "metrics": {"completed": getMetrics("completed"), "failed": getMetrics("failed")}}

import { baseOptions, emit, loadBullmq, run } from './common.mjs';

run(async (args) => {
  const { Queue } = await loadBullmq(args.bullmq);
  const queue = new Queue(args.queue, baseOptions(args));
  if (args.action === 'pause') await queue.pause();
  if (args.action === 'resume') await queue.resume();
  const metrics = args.action === 'metrics'
    ? { completed: await queue.getMetrics('completed'), failed: await queue.getMetrics('failed') }
    : null;
  emit({ event: 'done', action: args.action, paused: await queue.isPaused(),
    counts: await queue.getJobCounts(), metrics });
  await queue.close();
});
