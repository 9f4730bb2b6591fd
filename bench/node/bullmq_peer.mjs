// Node BullMQ as a benchmark peer: enqueue, fill, work and latency roles (as the Python peers,
// see bench/peers/common.py).
// Argument: one JSON object {"role", "bullmq": "5"|"6", "redis", "n", "bulk", "concurrency",
// "sleep_ms" (<0: the job returns its start time, for the latency test)}; prints JSON lines.
// Completions are counted in-process and flushed to the hash bench:done by a 5 ms timer, on a
// connection of their own, so counting adds no Redis round trip per job.

const args = JSON.parse(process.argv[2]);
const { Queue, Worker, QueueEvents } = await import(args.bullmq === '6' ? 'bullmq6' : 'bullmq5');
const connection = { url: args.redis };
const QUEUE = 'bench';
const KEY = 'bench:done';
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const nowMs = () => performance.timeOrigin + performance.now();

async function enqueue(n, bulk) {
  const queue = new Queue(QUEUE, { connection });
  await queue.waitUntilReady();
  await queue.getJobCounts('wait'); // connected before the clock starts
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
  let processor;
  if (sleepMs < 0) {
    processor = async () => nowMs();
  } else {
    // ioredis is the dependency both BullMQ versions share (hoisted by npm).
    const { default: IORedis } = await import('ioredis');
    const client = new IORedis(args.redis);
    let pending = 0, first = null, last = 0, sentFirst = false, busy = false;
    setInterval(async () => {
      if (busy) return;
      const p = pending;
      const withFirst = !sentFirst && first !== null;
      if (!p && !withFirst) return;
      pending = 0;
      busy = true;
      const pipe = client.pipeline();
      let cmds = 1;
      if (withFirst) { pipe.hset(KEY, `first:${process.pid}`, first); sentFirst = true; cmds += 1; }
      if (p) { pipe.hincrby(KEY, 'count', p); pipe.hset(KEY, `last:${process.pid}`, last); cmds += 2; }
      pipe.hincrby(KEY, 'cmds', cmds);
      try { await pipe.exec(); } finally { busy = false; }
    }, 5);
    processor = async () => {
      if (first === null) first = nowMs();
      if (sleepMs) await new Promise((r) => setTimeout(r, sleepMs));
      pending += 1;
      last = nowMs();
    };
  }
  const worker = new Worker(QUEUE, processor, { connection, concurrency });
  worker.on('error', (err) => console.error('worker error', err));
  await worker.waitUntilReady();
  emit({ ready: true });
}

async function latency(n, warmup) {
  const queue = new Queue(QUEUE, { connection });
  // From the stream's start (it is empty after FLUSHALL): an event written before the
  // reader's first XREAD is not missed (reading from '$' can miss the first job's).
  const events = new QueueEvents(QUEUE, { connection, lastEventId: '0-0' });
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
