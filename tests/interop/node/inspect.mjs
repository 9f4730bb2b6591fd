// Reads jobs, counts, workers and recent events the way Node BullMQ sees them.
//
// Arguments: common ones plus
//   ids: ["1", ...]   jobs to read with Job.fromId
//   events: N         how many of the newest stream entries to print (default 1000)
// Output lines:
//   {"event": "job", "id", "found", "state", "logs", "logCount", and Job fields: name, data,
//    opts, progress, returnvalue, failedReason, attemptsMade, attemptsStarted, stalledCounter,
//    stacktrace, timestamp, processedOn, finishedOn, delay, priority, processedBy}
//   {"event": "counts", "counts": {...getJobCounts()}}
//   {"event": "workers", "names": [client names from getWorkers()]}
//   {"event": "events", "events": [{"streamId", "event", ...fields}, ...]}  (oldest first)

import { baseOptions, emit, loadBullmq, rawClient, run } from './common.mjs';

const JOB_FIELDS = [
  'name', 'data', 'opts', 'progress', 'returnvalue', 'failedReason', 'attemptsMade',
  'attemptsStarted', 'stalledCounter', 'stacktrace', 'timestamp', 'processedOn', 'finishedOn',
  'delay', 'priority', 'processedBy',
];

async function describeJob(Job, queue, id) {
  const job = await Job.fromId(queue, id);
  if (!job) return { event: 'job', id, found: false };
  const fields = Object.fromEntries(JOB_FIELDS.map((f) => [f, job[f] ?? null]));
  const { logs, count } = await queue.getJobLogs(id);
  return { event: 'job', id, found: true, ...fields, state: await job.getState(), logs,
    logCount: count };
}

async function recentEvents(queue, key, count) {
  const client = await rawClient(queue);
  const entries = await client.xrevrange(key, '+', '-', 'COUNT', count);
  return entries.reverse().map(([streamId, flat]) => {
    const entry = { streamId };
    for (let i = 0; i < flat.length; i += 2) entry[flat[i]] = flat[i + 1];
    return entry;
  });
}

run(async (args) => {
  const { Queue, Job } = await loadBullmq(args.bullmq);
  const queue = new Queue(args.queue, baseOptions(args));
  try {
    for (const id of args.ids ?? []) emit(await describeJob(Job, queue, String(id)));
    emit({ event: 'counts', counts: await queue.getJobCounts() });
    const workers = await queue.getWorkers();
    emit({ event: 'workers', names: workers.map((w) => w.rawname ?? w.name) });
    const key = `${args.prefix}:${args.queue}:events`;
    emit({ event: 'events', events: await recentEvents(queue, key, args.events ?? 1000) });
  } finally {
    await queue.close();
  }
});
