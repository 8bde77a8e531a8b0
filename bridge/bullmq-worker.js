'use strict';

/**
 * A small real BullMQ (npm `bullmq`, pinned in package.json) worker for bullpy's tests and for
 * checking a migration by hand: it processes one BullMQ queue and prints one JSON line per
 * job it ran, so a caller can assert what BullMQ really handed to a Node handler.
 *
 *   REDIS_URL=redis://127.0.0.1:6379/0 QUEUE_NAME=message-queue BULLMQ_PREFIX=bull \
 *     MAX_JOBS=10 node bullmq-worker.js
 *
 * Environment (Redis connection as in worker.js: REDIS_URL, else REDIS_HOST/PORT/...):
 *   QUEUE_NAME          the BullMQ queue (required)
 *   BULLMQ_PREFIX       BullMQ key prefix (default "bull")
 *   CONCURRENCY         jobs at once (default 1: jobs then run strictly in BullMQ's order)
 *   MAX_JOBS            exit 0 once this many jobs have completed
 *   UNTIL_IDS           comma-separated job ids: exit 0 once every one of them has completed
 *   UNTIL_NAMES         comma-separated job names: with UNTIL_IDS, also wait for one completed job
 *                       of each of these names (repeat iterations, whose ids are not known ahead)
 *   EXIT_WHEN_DRAINED   "1": exit 0 once nothing is waiting, prioritized, delayed or active
 *                       for IDLE_MS (default 500) ms
 *   TIMEOUT_MS          exit 3 after this long whatever happened (default: none)
 *   FAIL_NAMES          comma-separated job names whose handler throws (retries, attempts)
 *
 * stdout carries JSON lines only (logs go to stderr):
 *   {"event":"ready","queue","prefix","redis","concurrency","bullmq","pid"}
 *   {"event":"job","id","name","data","opts","priority","delay","timestamp","processedOn",
 *    "attemptsMade","startedAt"}            one per handler run, as the handler starts
 *   {"event":"exit","reason","completed","failed","code"}
 * Exit codes: 0 done (MAX_JOBS reached, UNTIL_IDS completed, or drained), 2 configuration error, 3 timeout, 1 other.
 */

const { Queue, Worker } = require('bullmq');
const bullmqVersion = require('bullmq/package.json').version;
const { parseIntStrict, redisOptionsFromEnv, describeRedis } = require('./lib/redis-config');

function out(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function log(message) {
  process.stderr.write(`[bullmq-worker] ${message}\n`);
}

function config(env) {
  if (!env.QUEUE_NAME) throw new Error('QUEUE_NAME is required');
  return {
    queue: env.QUEUE_NAME,
    prefix: env.BULLMQ_PREFIX || 'bull',
    concurrency: env.CONCURRENCY ? parseIntStrict(env.CONCURRENCY, 'CONCURRENCY', { min: 1 }) : 1,
    maxJobs: env.MAX_JOBS ? parseIntStrict(env.MAX_JOBS, 'MAX_JOBS', { min: 1 }) : null,
    untilIds: env.UNTIL_IDS ? new Set(env.UNTIL_IDS.split(',').filter(Boolean)) : null,
    untilNames: new Set((env.UNTIL_NAMES || '').split(',').filter(Boolean)),
    exitWhenDrained: env.EXIT_WHEN_DRAINED === '1',
    idleMs: env.IDLE_MS ? parseIntStrict(env.IDLE_MS, 'IDLE_MS', { min: 1 }) : 500,
    timeoutMs: env.TIMEOUT_MS ? parseIntStrict(env.TIMEOUT_MS, 'TIMEOUT_MS', { min: 1 }) : null,
    failNames: new Set((env.FAIL_NAMES || '').split(',').filter(Boolean)),
  };
}

async function main() {
  let cfg;
  let redis;
  try {
    cfg = config(process.env);
    redis = redisOptionsFromEnv(process.env);
  } catch (err) {
    log(`configuration error: ${err.message}`);
    process.exit(2);
  }
  // BullMQ insists on maxRetriesPerRequest: null for the worker's blocking connection.
  const connection = { ...redis, maxRetriesPerRequest: null };
  let completed = 0;
  let failed = 0;
  let exiting = false;

  const worker = new Worker(
    cfg.queue,
    async job => {
      out({
        event: 'job',
        id: job.id,
        name: job.name,
        data: job.data,
        opts: job.opts,
        priority: job.priority,
        delay: job.delay,
        timestamp: job.timestamp,
        processedOn: job.processedOn,
        attemptsMade: job.attemptsMade,
        startedAt: Date.now(),
      });
      if (cfg.failNames.has(job.name)) throw new Error(`bullmq-worker: ${job.name} fails on purpose`);
      return { processed: job.id };
    },
    { connection, prefix: cfg.prefix, concurrency: cfg.concurrency, autorun: false },
  );
  // A queue handle for the drained check (counts), on its own connection.
  const queue = new Queue(cfg.queue, { connection, prefix: cfg.prefix });

  async function exit(reason, code) {
    if (exiting) return;
    exiting = true;
    try {
      await worker.close();
      await queue.close();
    } catch (err) {
      log(`close failed: ${err.message}`);
    }
    out({ event: 'exit', reason, completed, failed, code });
    process.exit(code);
  }

  worker.on('completed', job => {
    completed += 1;
    if (cfg.untilIds !== null) {
      cfg.untilIds.delete(job.id);
      cfg.untilNames.delete(job.name);
      if (cfg.untilIds.size === 0 && cfg.untilNames.size === 0) exit('until-ids', 0);
    }
    if (cfg.maxJobs !== null && completed >= cfg.maxJobs) exit('max-jobs', 0);
  });
  worker.on('failed', () => {
    failed += 1;
  });
  worker.on('error', err => log(`worker error: ${err.message}`));
  process.on('SIGTERM', () => exit('signal', 0));
  process.on('SIGINT', () => exit('signal', 0));

  if (cfg.timeoutMs !== null) {
    setTimeout(() => exit('timeout', 3), cfg.timeoutMs).unref();
  }

  await worker.waitUntilReady();
  out({
    event: 'ready',
    queue: cfg.queue,
    prefix: cfg.prefix,
    redis: describeRedis(redis),
    concurrency: cfg.concurrency,
    bullmq: bullmqVersion,
    pid: process.pid,
  });
  worker.run().catch(err => {
    log(`worker stopped: ${err.message}`);
    exit('error', 1);
  });

  if (cfg.exitWhenDrained) {
    let idleSince = null;
    const timer = setInterval(async () => {
      if (exiting) return;
      try {
        const counts = await queue.getJobCounts('wait', 'prioritized', 'delayed', 'active', 'paused');
        const busy = Object.values(counts).some(n => n > 0);
        if (busy) {
          idleSince = null;
        } else if (idleSince === null) {
          idleSince = Date.now();
        } else if (Date.now() - idleSince >= cfg.idleMs) {
          clearInterval(timer);
          exit('drained', 0);
        }
      } catch (err) {
        log(`count failed: ${err.message}`);
      }
    }, 100);
  }
}

main().catch(err => {
  log(`start-up failed: ${err.stack || err.message}`);
  process.exit(1);
});
