// Runs a Node BullMQ Worker whose processor does what each job's data.behaviour says.
//
// Arguments: common ones plus the optional worker options concurrency, lockDuration,
// stalledInterval, maxStalledCount, drainDelay (ms, BullMQ spelling), name (worker name, stored
// as the job's `pb`), and
//   until: N       stop after N jobs finished here (completed, or failed with no retry left)
//          "idle"  stop once the queue has no waiting/active/delayed/prioritized job (add first!)
//          absent  run until SIGTERM (graceful close) or the deadline
//   behaviour      overrides every job's data.behaviour (e.g. "ok" to finish a job that hung)
//   deadline_ms    give up after this long (default 60000): prints {"event": "deadline"}, exits 3
//
// Behaviours (job.data.behaviour, default "ok"); data.fail_times = n first makes attempts fail
// while job.attemptsMade < n:
//   ok            returns data.result if given, else {"ok": true, "i": data.i}
//   fail          throws Error(data.message || "boom")
//   unrecoverable throws UnrecoverableError(data.message || "unrecoverable")
//   progress      updateProgress(50), updateProgress({"step": 2}), log "line 1", "line 2", returns
//   sleep         waits data.ms, returns
//   hang          never settles (for stalled-job tests)
//   children      returns {"children": job.getChildrenValues()} (a flow parent)
//
// Output lines: {"event": "ready"}; {"event": "active", id, name}; for every finished attempt
// {"event": "completed"|"failed", id, state, returnvalue, failedReason, attemptsMade} with state
// "completed", "failed" or "retrying"; {"event": "stalled", id}; {"event": "error", message};
// finally {"event": "summary", reason, completed: [ids], failed: [ids], processed: n}.

import { baseOptions, emit, loadBullmq, run, sleep } from './common.mjs';

const WORKER_OPTIONS = [
  'concurrency', 'lockDuration', 'stalledInterval', 'maxStalledCount', 'drainDelay', 'name',
];

function pick(args, keys) {
  return Object.fromEntries(keys.filter((k) => args[k] !== undefined).map((k) => [k, args[k]]));
}

function makeProcessor(UnrecoverableError, stats, override) {
  return async (job) => {
    stats.processed += 1;
    const data = job.data ?? {};
    if (typeof data.fail_times === 'number' && job.attemptsMade < data.fail_times) {
      throw new Error(data.message ?? `attempt ${job.attemptsMade + 1} failed`);
    }
    switch (override ?? data.behaviour ?? 'ok') {
      case 'ok':
        break;
      case 'fail':
        throw new Error(data.message || 'boom');
      case 'unrecoverable':
        throw new UnrecoverableError(data.message || 'unrecoverable');
      case 'progress':
        await job.updateProgress(50);
        await job.updateProgress({ step: 2 });
        await job.log('line 1');
        await job.log('line 2');
        break;
      case 'sleep':
        await sleep(data.ms ?? 0);
        break;
      case 'hang':
        await new Promise(() => {});
        break;
      case 'children':
        return { children: await job.getChildrenValues() };
      default:
        throw new Error(`unknown behaviour ${JSON.stringify(data.behaviour)}`);
    }
    return data.result !== undefined ? data.result : { ok: true, i: data.i };
  };
}

/** Resolves once the queue holds no job that still has to run. */
async function waitIdle(queue) {
  let quietPolls = 0;
  while (quietPolls < 2) {
    await sleep(200);
    const c = await queue.getJobCounts();
    const pending = ['waiting', 'active', 'delayed', 'prioritized', 'paused', 'waiting-children']
      .reduce((sum, state) => sum + (c[state] ?? 0), 0);
    quietPolls = pending === 0 ? quietPolls + 1 : 0;
  }
}

run(async (args) => {
  const { Queue, Worker, UnrecoverableError } = await loadBullmq(args.bullmq);
  const stats = { processed: 0, completed: [], failed: [] };
  let stop;
  const stopped = new Promise((resolve) => { stop = resolve; });
  const finishedOne = () => {
    if (typeof args.until === 'number' && stats.completed.length + stats.failed.length >= args.until) {
      stop('until');
    }
  };

  const worker = new Worker(args.queue, makeProcessor(UnrecoverableError, stats, args.behaviour), {
    ...baseOptions(args), ...pick(args, WORKER_OPTIONS), autorun: false,
  });
  worker.on('active', (job) => emit({ event: 'active', id: job.id, name: job.name }));
  worker.on('completed', (job, result) => {
    stats.completed.push(job.id);
    emit({ event: 'completed', id: job.id, state: 'completed', returnvalue: result ?? null,
      failedReason: null, attemptsMade: job.attemptsMade });
    finishedOne();
  });
  worker.on('failed', (job, err) => {
    if (!job) return emit({ event: 'error', message: String(err?.message ?? err) });
    const final = job.finishedOn != null;
    if (final) stats.failed.push(job.id);
    emit({ event: 'failed', id: job.id, state: final ? 'failed' : 'retrying', returnvalue: null,
      failedReason: err?.message ?? String(err), attemptsMade: job.attemptsMade });
    if (final) finishedOne();
  });
  worker.on('stalled', (jobId) => emit({ event: 'stalled', id: jobId }));
  worker.on('error', (err) => emit({ event: 'error', message: String(err?.message ?? err) }));

  const queue = new Queue(args.queue, baseOptions(args));
  process.on('SIGTERM', () => stop('sigterm'));
  process.on('SIGINT', () => stop('sigterm'));
  const deadline = setTimeout(() => stop('deadline'), args.deadline_ms ?? 60000);
  if (args.until === 'idle') waitIdle(queue).then(() => stop('idle'), (err) => stop(err));

  const running = worker.run();
  running.catch((err) => stop(err));
  await worker.waitUntilReady();
  emit({ event: 'ready' });

  const reason = await stopped;
  clearTimeout(deadline);
  if (reason instanceof Error) throw reason;
  if (reason === 'deadline') {
    emit({ event: 'deadline' });
    setTimeout(() => process.exit(3), 5000).unref();
  }
  await worker.close(reason === 'deadline');
  await queue.close();
  emit({ event: 'summary', reason, completed: stats.completed, failed: stats.failed,
    processed: stats.processed });
  return reason === 'deadline' ? 3 : 0;
});
