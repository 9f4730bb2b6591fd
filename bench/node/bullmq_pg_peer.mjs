// Node BullMQ 6.7.0 on its own PostgreSQL backend (createPostgresBackend, driver pg 8.23.1)
// as a workload-P peer (see bench/peers/pg_common.py). Argument: one JSON object
// {"role": "enqueue"|"work", "url", "n", "concurrency"}; prints one JSON line.
// enqueue: addBulk in batches of 1,000, timed after the backend is ready (schema migrated);
// work: one Worker at the given concurrency, counting in-process until n jobs ran.

import { withBackend, createPostgresBackend } from 'bullmq6';

const args = JSON.parse(process.argv[2]);
const { Queue, Worker } = withBackend(createPostgresBackend);
const connection = { connectionString: args.url, migrate: true };
const QUEUE = 'bench';
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const nowMs = () => performance.timeOrigin + performance.now();

async function enqueue(n) {
  const queue = new Queue(QUEUE, { connection });
  await queue.waitUntilReady();
  await queue.getJobCounts('wait'); // connected, schema made: before the clock
  const t0 = performance.now();
  for (let i = 0; i < n; i += 1000) {
    const batch = [];
    for (let j = i; j < Math.min(i + 1000, n); j++) batch.push({ name: 'noop', data: { i: j } });
    await queue.addBulk(batch);
  }
  emit({ seconds: (performance.now() - t0) / 1000 });
  await queue.close();
}

async function work(n, concurrency) {
  let count = 0, first = null, last = 0;
  let finish;
  const finished = new Promise((r) => { finish = r; });
  const worker = new Worker(QUEUE, async () => {
    if (first === null) first = nowMs();
    count += 1;
    last = nowMs();
    if (count >= n) finish();
  }, { connection, concurrency });
  worker.on('error', (err) => console.error('worker error', err));
  await finished;
  emit({ first_ms: first, last_ms: last, jobs: count });
  await worker.close();
}

if (args.role === 'enqueue') await enqueue(args.n);
else await work(args.n, args.concurrency);
process.exit(0);
