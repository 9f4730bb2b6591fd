// Prints the queue's events as Node BullMQ's QueueEvents parses them, one JSON line each.
//
// Arguments: common ones plus
//   count: N            stop after N events (default: run until the deadline or SIGTERM)
//   deadline_ms         stop after this long (default 60000); exits 3 if `count` was not reached
//   last_event_id       stream id to start after (default: the newest entry when the script
//                       starts, so every event after "ready" is seen; "0" replays the stream)
// Output: {"event": "ready"}, then {"event": <name>, "streamId", ...fields} per stream entry
// (progress data and completed returnvalue already JSON-parsed by QueueEvents), then
// {"event": "summary", "seen": n, "reason": "count" | "deadline" | "sigterm"}.

import { baseOptions, emit, loadBullmq, rawClient, run } from './common.mjs';

/** Id of the newest entry in the events stream ("0" if empty): a fixed start, unlike "$". */
async function newestStreamId(QueueEvents, args) {
  const probe = new QueueEvents(args.queue, { ...baseOptions(args), autorun: false });
  try {
    const client = await rawClient(probe);
    const newest = await client.xrevrange(`${args.prefix}:${args.queue}:events`, '+', '-',
      'COUNT', 1);
    return newest.length ? newest[0][0] : '0';
  } finally {
    await probe.close();
  }
}

run(async (args) => {
  const { QueueEvents } = await loadBullmq(args.bullmq);
  const lastEventId = args.last_event_id ?? await newestStreamId(QueueEvents, args);
  const queueEvents = new QueueEvents(args.queue, { ...baseOptions(args), autorun: false,
    lastEventId });

  let seen = 0;
  let stop;
  const stopped = new Promise((resolve) => { stop = resolve; });
  const original = queueEvents.emit.bind(queueEvents);
  // QueueEvents has no catch-all listener: tap emit() for the stream events it dispatches.
  // Stream events are emitted as (name, fields, streamId) or, for "drained", (name, streamId);
  // each is emitted a second time as "<name>:<jobId>", which is skipped here.
  queueEvents.emit = (name, ...rest) => {
    const [fields, streamId] = rest;
    if (name === 'drained' && typeof fields === 'string') {
      record({ event: name, streamId: fields });
    } else if (typeof streamId === 'string' && fields && typeof fields === 'object'
        && !(fields.jobId !== undefined && name.endsWith(`:${fields.jobId}`))) {
      record({ event: name, streamId, ...fields });
    } else if (name === 'error') {
      emit({ event: 'error', message: String(fields?.message ?? fields) });
    }
    return original(name, ...rest);
  };
  function record(entry) {
    emit(entry);
    seen += 1;
    if (args.count !== undefined && seen >= args.count) stop('count');
  }

  process.on('SIGTERM', () => stop('sigterm'));
  const deadline = setTimeout(() => stop('deadline'), args.deadline_ms ?? 60000);
  queueEvents.run().catch((err) => stop(err));
  await queueEvents.waitUntilReady();
  emit({ event: 'ready' });

  const reason = await stopped;
  clearTimeout(deadline);
  await queueEvents.close();
  if (reason instanceof Error) throw reason;
  emit({ event: 'summary', seen, reason });
  return reason === 'deadline' && args.count !== undefined ? 3 : 0;
});
