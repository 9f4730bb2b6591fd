// Flows with Node BullMQ: add a tree with FlowProducer, or read parents the way Node sees them.
//
// Arguments: common ones ("queue" is the default queue of tree nodes) plus
//   action: "add" | "read"
//   add:  tree: {"name", "queueName"?, "data"?, "opts"?, "children"?: [tree, ...]}
//         Output: {"event": "flow", "tree": {"id", "queue", "name", "children": [...]}}
//   read: ids: ["pid", ...] jobs of "queue" to read
//         Output per id: {"event": "parent", "id", "found", "state", "childrenValues",
//         "dependencies", "counts", "ignored", "failedReason", "returnvalue"}

import { baseOptions, emit, loadBullmq, run } from './common.mjs';

function withQueue(node, queue) {
  return {
    name: node.name,
    queueName: node.queueName ?? queue,
    data: node.data ?? {},
    opts: node.opts,
    children: node.children?.map((child) => withQueue(child, queue)),
  };
}

function describe(node) {
  return {
    id: node.job.id,
    queue: node.job.queueName,
    name: node.job.name,
    children: (node.children ?? []).map(describe),
  };
}

async function readParent(Job, queue, id) {
  const job = await Job.fromId(queue, id);
  if (!job) return { event: 'parent', id, found: false };
  return {
    event: 'parent',
    id,
    found: true,
    state: await job.getState(),
    childrenValues: await job.getChildrenValues(),
    dependencies: await job.getDependencies(),
    counts: await job.getDependenciesCount(),
    ignored: await job.getFailedChildrenValues(),
    failedReason: job.failedReason ?? null,
    returnvalue: job.returnvalue ?? null,
  };
}

run(async (args) => {
  const { FlowProducer, Queue, Job } = await loadBullmq(args.bullmq);
  if (args.action === 'add') {
    const producer = new FlowProducer(baseOptions(args));
    try {
      const node = await producer.add(withQueue(args.tree, args.queue));
      emit({ event: 'flow', tree: describe(node) });
    } finally {
      await producer.close();
    }
    return 0;
  }
  if (args.action === 'read') {
    const queue = new Queue(args.queue, baseOptions(args));
    try {
      for (const id of args.ids ?? []) emit(await readParent(Job, queue, String(id)));
    } finally {
      await queue.close();
    }
    return 0;
  }
  throw new Error(`unknown action ${JSON.stringify(args.action)}: use "add" or "read"`);
});
