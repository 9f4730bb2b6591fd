// Node BullMQ as a benchmark peer: enqueue, fill, work and latency roles.
// Argument: one JSON object {"role", "bullmq": "5"|"6", "redis", "n", "bulk", "concurrency",
// "sleep_ms" (<0: return the start time for latency)}; prints one JSON result line.
// Completions are counted in-process and flushed to the hash bench:done every 5 ms.

const args = JSON.parse(process.argv[2]);
const { Queue, Worker, QueueEvents } = await import(args.bullmq === '6' ? 'bullmq6' : 'bullmq5');
const connection = { url: args.redis };
const QUEUE = 'bench';
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const nowMs = () => performance.timeOrigin + performance.now();

async function enqueue(n, bulk) {
  const queue = new Queue(QUEUE, { connection });
  await queue.waitUntilReady();
  await queue.getJobCounts('wait');
  const t0 = performance.now();
  if (bulk) {
    for (let i = 0; i < n; i += 1000) {
      const batch = [];
      for (let j = i; j < Math.min(i + 1000, n); j++) batch.push({ name: 'noop', data: { i: j } });
      await queue.addBulk(batch);
    }
  } else {
    for (let i = 0; i < n; i++) await queue.add('noop', { i });
  }
  emit({ seconds: (performance.now() - t0) / 1000 });
  await queue.close();
}

async function work(concurrency, sleepMs) {
  // The counter's own connection (Queue.client differs between 5.x and 6.x).
  const { default: IORedis } = await import('ioredis');
  const client = new IORedis(args.redis);
  let pending = 0, first = null, last = 0, sentFirst = false;
  setInterval(async () => {
    const p = pending; pending = 0;
    const multi = client.multi();
    let any = false;
    if (!sentFirst && first !== null) { multi.hsetnx('bench:done', 'first', first); sentFirst = true; any = true; }
    if (p) { multi.hincrby('bench:done', 'count', p); multi.hset('bench:done', `last:${process.pid}`, last); any = true; }
    if (any) await multi.exec();
  }, 5);
  const processor = sleepMs < 0
    ? async () => nowMs()
    : async () => {
        if (first === null) first = nowMs();
        if (sleepMs) await new Promise((r) => setTimeout(r, sleepMs));
        pending += 1; last = nowMs();
      };
  const worker = new Worker(QUEUE, processor, { connection, concurrency });
  await worker.waitUntilReady();
  emit({ ready: true });
}

async function latency(n, warmup) {
  const queue = new Queue(QUEUE, { connection });
  const events = new QueueEvents(QUEUE, { connection });
  await queue.waitUntilReady();
  await events.waitUntilReady();
  const start = [], done = [];
  for (let i = 0; i < warmup + n; i++) {
    const before = nowMs();
    const job = await queue.add('noop', { i });
    const began = await job.waitUntilFinished(events, 10000);
    const after = nowMs();
    if (i >= warmup) { start.push(began - before); done.push(after - before); }
  }
  emit({ start, done });
  await events.close();
  await queue.close();
}

if (args.role === 'enqueue' || args.role === 'fill') await enqueue(args.n, args.bulk ?? args.role === 'fill');
else if (args.role === 'work') await work(args.concurrency ?? 100, args.sleep_ms ?? 0);
else if (args.role === 'latency') await latency(args.n, args.warmup ?? 10);
else throw new Error(`unknown role ${args.role}`);
