#!/usr/bin/env node
'use strict';

/**
 * Node Bull 3 (npm `bull@3.29.3`, installed as the alias `bull3`) for bullpy's interop tests.
 *
 *   node bull3-peer.js <mode> '<json>'      prints one JSON line on stdout, exits 0 (1 on error)
 *
 * Redis comes from REDIS_URL (a plain redis:// URL; Bull 3 parses it itself).
 * Every mode takes {"queue": name, "prefix": prefix}.
 *   add      {"jobs": [{"name"?, "data", "opts"?}]}   -> [job.toJSON(), ...]        (Bull 3's queue.add)
 *   get      {"ids": [...]}                           -> [job.toJSON() | null, ...] (Bull 3's queue.getJob)
 *   counts   {}                                       -> queue.getJobCounts()
 *   process  {"finished": n, "timeoutMs"?, "concurrency"?}
 *            runs a Bull 3 worker for every job name until n jobs are completed or failed (getJobCounts),
 *            then closes it -> [{id, name, data, attemptsMade}] per handler run. The handler fails with
 *            Error(data.fail) while data.fail is set and attemptsMade < (data.failTimes ?? Infinity),
 *            else returns {echo: data, by: "bull3", attempt: attemptsMade}.
 */

const Queue = require('bull3');

for (const level of ['log', 'info', 'warn', 'debug']) {
  console[level] = (...args) => console.error(...args);
}

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms));
}

async function main() {
  const mode = process.argv[2];
  const args = JSON.parse(process.argv[3] || '{}');
  const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379/0';
  const queue = new Queue(args.queue, url, { prefix: args.prefix || 'bull' });
  queue.on('error', err => console.error('bull3 queue error:', err && err.message));
  let result;
  try {
    if (mode === 'add') {
      result = [];
      for (const spec of args.jobs) {
        const job = spec.name
          ? await queue.add(spec.name, spec.data, spec.opts || {})
          : await queue.add(spec.data, spec.opts || {});
        result.push(job.toJSON());
      }
    } else if (mode === 'get') {
      result = [];
      for (const id of args.ids) {
        const job = await queue.getJob(id);
        result.push(job ? job.toJSON() : null);
      }
    } else if (mode === 'counts') {
      result = await queue.getJobCounts();
    } else if (mode === 'process') {
      const runs = [];
      queue.process('*', args.concurrency || 1, async job => {
        runs.push({ id: String(job.id), name: job.name, data: job.data, attemptsMade: job.attemptsMade });
        const data = job.data || {};
        const failTimes = data.failTimes === undefined ? Infinity : data.failTimes;
        if (data.fail && job.attemptsMade < failTimes) throw new Error(data.fail);
        return { echo: data, by: 'bull3', attempt: job.attemptsMade };
      });
      const deadline = Date.now() + (args.timeoutMs || 30000);
      for (;;) {
        const counts = await queue.getJobCounts();
        if (counts.completed + counts.failed >= args.finished) break;
        if (Date.now() > deadline) throw new Error(`timed out: ${JSON.stringify(counts)}`);
        await sleep(50);
      }
      result = runs;
    } else {
      throw new Error(`unknown mode ${mode}`);
    }
  } finally {
    await queue.close();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(() => process.exit(0), err => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
