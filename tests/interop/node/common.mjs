// Shared helpers of the interop scripts: argument parsing, BullMQ version choice, JSON output.
//
// Every script takes one JSON object, as its first command-line argument or on stdin:
//   {"bullmq": "5" | "6", "redis": "redis://127.0.0.1:PORT", "queue": "name", "prefix": "bull", ...}
// and writes one JSON object per line on stdout. Diagnostics go to stderr.
// With "cluster": [["127.0.0.1", PORT], ...] the connection is an ioredis Cluster on those
// seed nodes instead (then "redis" is only a label).

const MODULES = { 5: 'bullmq5', 6: 'bullmq6' };

/** Reads the JSON argument from argv[2], or from stdin when there is none. */
export async function readArgs() {
  let raw = process.argv[2];
  if (raw === undefined) {
    const chunks = [];
    for await (const chunk of process.stdin) chunks.push(chunk);
    raw = Buffer.concat(chunks).toString('utf8');
  }
  const args = JSON.parse(raw);
  for (const key of ['bullmq', 'redis', 'queue']) {
    if (args[key] === undefined) throw new Error(`missing argument "${key}"`);
  }
  return { prefix: 'bull', ...args };
}

/** Imports the BullMQ major version asked for ("5" or "6"), installed under an npm alias. */
export async function loadBullmq(version) {
  const name = MODULES[String(version)];
  if (!name) throw new Error(`unknown bullmq version ${JSON.stringify(version)}: use "5" or "6"`);
  return import(name);
}

import { createRequire } from 'node:module';

/** Options shared by Queue, Worker and QueueEvents: connection and key prefix. */
export function baseOptions(args) {
  if (args.cluster) {
    // ioredis is BullMQ's own client (installed with it, pinned by the lock file).
    const { Cluster } = createRequire(import.meta.url)('ioredis');
    const seeds = args.cluster.map(([host, port]) => ({ host, port }));
    const redisOptions = { maxRetriesPerRequest: null };
    return { connection: new Cluster(seeds, { redisOptions }), prefix: args.prefix };
  }
  return { connection: { url: args.redis }, prefix: args.prefix };
}

/** The raw ioredis client of a Queue/QueueEvents (5.x: `.client`; 6.x: its Redis backend's). */
export async function rawClient(instance) {
  return typeof instance.getBackend === 'function' ? instance.getBackend().client : instance.client;
}

/** Writes one JSON line on stdout. */
export function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `main(args)`, then exits with its return code (default 0); errors exit 1 with a message. */
export function run(main) {
  readArgs()
    .then(main)
    .then((code) => process.exit(code ?? 0))
    .catch((err) => {
      process.stderr.write(`${err?.stack ?? err}\n`);
      process.exit(1);
    });
}
