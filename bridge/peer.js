#!/usr/bin/env node
'use strict';

/**
 * The conformance peer: real Node Bull 4.16.5, driven by bullpy's tests over JSON lines.
 *
 * stdin:  one request per line   {"id": <n>, "cmd": "<command>", ...fields}
 * stdout: one response per line  {"id": <n>, "ok": true, "result": <JSON>}
 *                             or {"id": <n>, "ok": false, "error": "<message>", "stack": "<stack>"}
 * Requests run concurrently (a long `waitFor` does not hold up a `call`), so responses
 * may come back out of order; match them by id. Nothing but responses is written to
 * stdout; every log line goes to stderr. EOF on stdin closes all queues and exits 0.
 *
 * Redis comes from the environment exactly as for worker.js (REDIS_URL or REDIS_HOST...).
 *
 * Queues are addressed by a spec object carried by every command:
 *   "queue": {"name": "q", "prefix": "bull", "settings": {...}, "limiter": {...},
 *             "defaultJobOptions": {...}, "metrics": {...}}
 * One Bull Queue instance is created lazily per distinct spec (compared as canonical
 * JSON), so two specs with different settings are two independent Node "processes"
 * sharing the same Redis keys.
 *
 * Commands (see README.md for the full field list):
 *   call, job, process, processed, waitFor, listen, events, close, exit, now, cronNext, ping,
 *   workersOnEveryNode
 */

const readline = require('readline');
const Queue = require('bull');
const parser = require('cron-parser');
const _ = require('lodash');

const { bullConnection } = require('./lib/redis-config');
const { toJsonSafe, errorToJson } = require('./lib/serialize');

// Bull and its dependencies occasionally use console.*: keep stdout for responses only.
for (const level of ['log', 'info', 'warn', 'debug']) {
  console[level] = (...args) => console.error(...args);
}

// Fails at start-up on a bad REDIS_URL / REDIS_CLUSTER; each queue then gets its own connection (clients).
const REDIS_DESCRIPTION = bullConnection(process.env).describe;
const QUEUE_SPEC_KEYS = new Set(['name', 'prefix', 'settings', 'limiter', 'defaultJobOptions', 'metrics']);

/** Queue methods that would hand the peer's own machinery to the caller. */
const DENIED_QUEUE_METHODS = new Set([
  'constructor', 'process', 'setHandler', 'start', 'run', 'processJobs', 'processJob',
  'on', 'once', 'off', 'addListener', 'prependListener', 'prependOnceListener',
  'removeListener', 'removeAllListeners', 'emit', 'close', 'disconnect', 'multi',
]);
const DENIED_JOB_METHODS = new Set(['constructor']);

/** Events whose subscription is set up asynchronously by Bull (see queue.js _registerEvent). */
const INTERNAL_SUBSCRIBED_EVENTS = new Set(['waiting', 'delayed', 'duplicated', 'debounced']);

const DEFAULT_WAIT_TIMEOUT_MS = 10000;
const DEFAULT_POLL_MS = 50;
const DEFAULT_CLOSE_TIMEOUT_MS = 10000;

function log(...parts) {
  process.stderr.write(`[peer ${new Date().toISOString()}] ${parts.join(' ')}\n`);
}

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms));
}

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** JSON with object keys sorted at every level: the cache key of a queue spec. */
function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isPlainObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map(k => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value === undefined ? null : value);
}

/** Resolve after `promise`, or reject after `ms` with `message`. */
function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------
// Queue registry
// ---------------------------------------------------------------------------

/**
 * One cached Bull Queue plus what the peer recorded on it.
 *   records:   one entry per handler run (see `process`)
 *   events:    events recorded by `listen`
 *   listening: event names already subscribed
 */
class QueueEntry {
  constructor(key, spec) {
    this.key = key;
    this.spec = spec;
    const connection = bullConnection(process.env);
    const opts = { ...connection.options, prefix: spec.prefix || 'bull' };
    if (spec.settings) opts.settings = _.cloneDeep(spec.settings);
    if (spec.limiter) opts.limiter = _.cloneDeep(spec.limiter);
    if (spec.defaultJobOptions) opts.defaultJobOptions = _.cloneDeep(spec.defaultJobOptions);
    if (spec.metrics) opts.metrics = _.cloneDeep(spec.metrics);
    this.queue = new Queue(spec.name, opts);
    connection.adopt(this.queue);
    this.queue.on('error', err => log(`queue ${spec.name} error:`, err && err.message ? err.message : err));
    this.records = [];
    this.recordByJob = new WeakMap();
    this.events = [];
    this.listening = new Set();
    this.outcomeListenersInstalled = false;
  }

  /** Mark records settled when Bull has written the outcome (local completed/failed). */
  installOutcomeListeners() {
    if (this.outcomeListenersInstalled) return;
    this.outcomeListenersInstalled = true;
    const settle = (job, outcome, fields) => {
      let record = this.recordByJob.get(job);
      if (!record) {
        // E.g. "Missing process handler for job type x": Bull failed it without a handler run.
        record = newRecord(job);
        record.start = null;
        this.records.push(record);
      }
      Object.assign(record, { outcome, settled: Date.now() }, fields);
    };
    this.queue.on('completed', (job, result) => settle(job, 'completed', { returnvalue: toJsonSafe(result) }));
    this.queue.on('failed', (job, err) =>
      settle(job, 'failed', { error: err && err.message !== undefined ? String(err.message) : String(err) })
    );
  }
}

const queues = new Map();

function validateSpec(spec) {
  if (!isPlainObject(spec) || typeof spec.name !== 'string' || !spec.name) {
    throw new Error('"queue" must be an object with a non-empty string "name"');
  }
  for (const key of Object.keys(spec)) {
    if (!QUEUE_SPEC_KEYS.has(key)) {
      throw new Error(`unknown queue option ${JSON.stringify(key)} (expected one of ${[...QUEUE_SPEC_KEYS].join(', ')})`);
    }
  }
  if (spec.prefix !== undefined && spec.prefix !== null && typeof spec.prefix !== 'string') {
    throw new Error('"queue.prefix" must be a string');
  }
}

/** The cached entry for a queue spec, creating the Bull Queue on first use. */
function entryFor(spec) {
  validateSpec(spec);
  const clean = _.omitBy(spec, v => v === null || v === undefined);
  const key = canonicalJson(clean);
  let entry = queues.get(key);
  if (!entry) {
    entry = new QueueEntry(key, clean);
    queues.set(key, entry);
  }
  return entry;
}

function requireQueue(req) {
  if (req.queue === undefined) throw new Error(`"${req.cmd}" needs a "queue"`);
  return entryFor(req.queue);
}

async function closeEntry(entry, { doNotWaitJobs = false, timeout = DEFAULT_CLOSE_TIMEOUT_MS } = {}) {
  queues.delete(entry.key);
  try {
    await withTimeout(entry.queue.close(!!doNotWaitJobs), timeout, `closing queue ${entry.spec.name} timed out`);
  } catch (err) {
    // A hung job keeps close() waiting; drop the connections so the process can go on.
    log(err.message, '- disconnecting');
    await entry.queue.disconnect().catch(() => {});
  }
}

async function closeAll(opts) {
  await Promise.all([...queues.values()].map(entry => closeEntry(entry, opts)));
}

// ---------------------------------------------------------------------------
// The processor: behaviour driven by job data
// ---------------------------------------------------------------------------

function newRecord(job) {
  return {
    id: job.id,
    name: job.name,
    data: toJsonSafe(job.data),
    attemptsMade: job.attemptsMade,
    start: Date.now(),
    end: null,
    settled: null,
    outcome: 'active',
    returnvalue: null,
    error: null,
  };
}

/**
 * A Bull handler whose behaviour is the command's `behaviour` overlaid with the job's
 * `data.__peer` object. Steps, in order: progress values, log rows, sleep, crash, hang,
 * fail/failTimes (with optional discard), then the return value.
 */
function makeHandler(entry, defaults) {
  return async function peerHandler(job) {
    const own = job.data && isPlainObject(job.data.__peer) ? job.data.__peer : {};
    const behaviour = { ...defaults, ...own };
    const record = newRecord(job);
    entry.records.push(record);
    entry.recordByJob.set(job, record);

    for (const value of behaviour.progress || []) await job.progress(value);
    for (const row of behaviour.log || []) await job.log(typeof row === 'string' ? row : JSON.stringify(row));
    if (behaviour.sleep > 0) await sleep(behaviour.sleep);
    if (behaviour.crash) {
      log(`crash requested by job ${job.id}: exiting with 137`);
      process.exit(137);
    }
    if (behaviour.hang) {
      log(`job ${job.id} hangs on purpose`);
      await new Promise(() => {});
    }

    const hasFail = behaviour.fail !== undefined && behaviour.fail !== null;
    const hasFailTimes = Number.isInteger(behaviour.failTimes);
    if (hasFail || hasFailTimes) {
      const failNow = hasFailTimes ? job.attemptsMade < behaviour.failTimes : true;
      if (failNow) {
        record.end = Date.now();
        if (behaviour.discard) job.discard();
        throw new Error(hasFail ? String(behaviour.fail) : `peer failure ${job.attemptsMade}`);
      }
    }

    record.end = Date.now();
    if (behaviour.returnUndefined) return undefined;
    if (Object.prototype.hasOwnProperty.call(behaviour, 'return')) return behaviour.return;
    return { processed: job.id };
  };
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

function checkMethod(target, method, denied, what) {
  if (typeof method !== 'string' || !method || method.startsWith('_') || denied.has(method)) {
    throw new Error(`${what} method ${JSON.stringify(method)} is not allowed`);
  }
  if (typeof target[method] !== 'function') {
    throw new Error(`${what} has no method ${JSON.stringify(method)}`);
  }
}

/** `pause`/`resume` also accept one object argument: {isLocal, doNotWaitActive}. */
function pauseArgs(method, args) {
  if (args.length === 1 && isPlainObject(args[0])) {
    const { isLocal = false, doNotWaitActive = false } = args[0];
    return method === 'pause' ? [isLocal, doNotWaitActive] : [isLocal];
  }
  return args;
}

/** moveToFailed's first argument: an {message, stack?} object becomes a real Error. */
function errorArg(value) {
  if (typeof value === 'string') return new Error(value);
  if (isPlainObject(value) && value.message !== undefined) {
    const err = new Error(String(value.message));
    if (value.stack) err.stack = String(value.stack);
    return err;
  }
  return value;
}

async function waitUntil(check, { timeout = DEFAULT_WAIT_TIMEOUT_MS, interval = DEFAULT_POLL_MS, describe }) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const result = await check();
    if (result.done) return result.value;
    if (Date.now() >= deadline) throw new Error(`waitFor timed out after ${timeout} ms: ${describe(result.value)}`);
    await sleep(interval);
  }
}

const COMMANDS = {
  ping: async () => 'pong',

  now: async () => Date.now(),

  info: async () => ({
    pid: process.pid,
    node: process.version,
    bull: require('bull/package.json').version,
    redis: REDIS_DESCRIPTION,
    queues: [...queues.values()].map(entry => entry.spec),
  }),

  /** {queue, method, args?} -> any Queue method (Job results become toJSON). */
  call: async req => {
    const { queue } = requireQueue(req);
    const method = req.method;
    checkMethod(queue, method, DENIED_QUEUE_METHODS, 'Queue');
    let args = Array.isArray(req.args) ? req.args : [];
    if (method === 'pause' || method === 'resume') args = pauseArgs(method, args);
    return queue[method](...args);
  },

  /** {queue, jobId, method, args?} -> getJob(jobId) then the Job method. */
  job: async req => {
    const { queue } = requireQueue(req);
    const job = await queue.getJob(req.jobId);
    if (!job) throw new Error(`job not found: ${req.jobId}`);
    const method = req.method;
    checkMethod(job, method, DENIED_JOB_METHODS, 'Job');
    const args = Array.isArray(req.args) ? [...req.args] : [];
    if (method === 'moveToFailed' && args.length) args[0] = errorArg(args[0]);
    return job[method](...args);
  },

  /** {queue, name?="*", concurrency?=1, behaviour?} -> start a handler on this Queue. */
  process: async req => {
    const entry = requireQueue(req);
    const name = req.name || '*';
    const concurrency = req.concurrency === undefined ? 1 : req.concurrency;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('"concurrency" must be an integer >= 1');
    const behaviour = isPlainObject(req.behaviour) ? req.behaviour : {};
    entry.installOutcomeListeners();
    const started = entry.queue.process(name, concurrency, makeHandler(entry, behaviour));
    started.catch(err => log(`processing on ${entry.spec.name} stopped:`, err && err.stack ? err.stack : err));
    // Reply once the delayed-set subscription and timer are up (Bull's _initProcess).
    await entry.queue.isReady();
    await entry.queue._initializingProcess;
    return { name, concurrency };
  },

  /**
   * {queue} -> Bull's getWorkers asked of every master: Bull's own parseClientList over each node's CLIENT
   * LIST. On ioredis Cluster, getWorkers asks one random master, while a worker names its connection to
   * another random master; on a single server this is getWorkers.
   */
  workersOnEveryNode: async req => {
    const { queue } = requireQueue(req);
    await queue.isReady();
    const client = queue.client;
    if (typeof client.nodes !== 'function') return queue.getWorkers();
    const lists = await Promise.all(client.nodes('master').map(node => node.client('list')));
    return lists.flatMap(list => queue.parseClientList(list));
  },

  /** {queue, clear?} -> the handler-run records. */
  processed: async req => {
    const entry = requireQueue(req);
    const records = entry.records.map(record => ({ ...record }));
    if (req.clear) entry.records = [];
    return records;
  },

  /**
   * {queue, predicate, timeout?, interval?, ...}
   *   "counts":    {counts: {completed: 3, waiting: 0, ...}} (getJobCounts, exact equality)
   *   "processed": {count: n} (n handler runs settled by Bull)
   *   "state":     {jobId, state} (job.getState(); a missing job reads as "missing")
   *   "events":    {event, count} (n recorded events of that name)
   */
  waitFor: async req => {
    const entry = requireQueue(req);
    const timing = { timeout: req.timeout || DEFAULT_WAIT_TIMEOUT_MS, interval: req.interval || DEFAULT_POLL_MS };
    switch (req.predicate) {
      case 'counts': {
        const want = req.counts;
        if (!isPlainObject(want) || !Object.keys(want).length) throw new Error('"counts" must be a non-empty object');
        return waitUntil(
          async () => {
            const counts = await entry.queue.getJobCounts();
            for (const key of Object.keys(want)) {
              if (!(key in counts)) throw new Error(`unknown count ${JSON.stringify(key)}`);
            }
            return { done: Object.keys(want).every(key => counts[key] === want[key]), value: counts };
          },
          { ...timing, describe: counts => `wanted ${JSON.stringify(want)}, last counts ${JSON.stringify(counts)}` }
        );
      }
      case 'processed': {
        const count = req.count;
        if (!Number.isInteger(count)) throw new Error('"count" must be an integer');
        return waitUntil(
          async () => {
            const settled = entry.records.filter(record => record.settled !== null);
            return { done: settled.length >= count, value: settled };
          },
          { ...timing, describe: settled => `wanted ${count} settled jobs, have ${settled.length}` }
        );
      }
      case 'state': {
        return waitUntil(
          async () => {
            const job = await entry.queue.getJob(req.jobId);
            const state = job ? await job.getState() : 'missing';
            return { done: state === req.state, value: state };
          },
          { ...timing, describe: state => `job ${req.jobId}: wanted ${req.state}, last state ${state}` }
        );
      }
      case 'events': {
        const count = req.count === undefined ? 1 : req.count;
        return waitUntil(
          async () => {
            const matched = entry.events.filter(event => event.event === req.event);
            return { done: matched.length >= count, value: matched };
          },
          { ...timing, describe: matched => `wanted ${count} ${req.event} events, have ${matched.length}` }
        );
      }
      default:
        throw new Error(`unknown predicate ${JSON.stringify(req.predicate)} (counts, processed, state, events)`);
    }
  },

  /** {queue, events: [...]} -> subscribe (global:* waits for the Redis subscription). */
  listen: async req => {
    const entry = requireQueue(req);
    if (!Array.isArray(req.events) || !req.events.every(name => typeof name === 'string')) {
      throw new Error('"events" must be a list of event names');
    }
    const subscriptions = [];
    for (const name of req.events) {
      if (entry.listening.has(name)) continue;
      entry.listening.add(name);
      const channel = name.replace(/^global:/, '');
      const subscribed = name.startsWith('global:') || INTERNAL_SUBSCRIBED_EVENTS.has(name);
      const existing = entry.queue.registeredEvents && entry.queue.registeredEvents[channel];
      if (subscribed) {
        // Bull emits "registered:<event>" once its (P)SUBSCRIBE is acknowledged.
        subscriptions.push(
          existing ? Promise.resolve(existing) : new Promise(resolve => entry.queue.once(`registered:${name}`, resolve))
        );
      }
      entry.queue.on(name, (...args) => {
        entry.events.push({ event: name, args: toJsonSafe(args), at: Date.now() });
      });
    }
    await withTimeout(Promise.all(subscriptions), DEFAULT_WAIT_TIMEOUT_MS, 'subscribing timed out');
    return [...entry.listening];
  },

  /** {queue, clear?} -> [{event, args, at}] */
  events: async req => {
    const entry = requireQueue(req);
    const events = entry.events.slice();
    if (req.clear) entry.events = [];
    return events;
  },

  /** {queue?, doNotWaitJobs?, timeout?} -> close one queue spec, or all of them. */
  close: async req => {
    const opts = { doNotWaitJobs: !!req.doNotWaitJobs, timeout: req.timeout || DEFAULT_CLOSE_TIMEOUT_MS };
    if (req.queue === undefined || req.queue === null) {
      const count = queues.size;
      await closeAll(opts);
      return count;
    }
    validateSpec(req.queue);
    const entry = queues.get(canonicalJson(_.omitBy(req.queue, v => v === null || v === undefined)));
    if (!entry) return 0;
    await closeEntry(entry, opts);
    return 1;
  },

  /** {doNotWaitJobs?, timeout?} -> let other requests finish, close everything, reply, exit 0. */
  exit: async (req, self) => {
    await othersSettled(self, req.timeout || DEFAULT_CLOSE_TIMEOUT_MS);
    await closeAll({ doNotWaitJobs: !!req.doNotWaitJobs, timeout: req.timeout || DEFAULT_CLOSE_TIMEOUT_MS });
    exitAfterReply = true;
    return null;
  },

  /**
   * {cron, options?: {currentDate?, startDate?, endDate?, tz?, utc?...}, count?=1}
   * The next `count` times (epoch ms), computed like Bull's repeatable.js getNextMillis:
   * parser.parseExpression(cron, _.defaults({currentDate}, options)) where currentDate is
   * max(startDate, currentDate ?? now). Stops early when the expression has no more dates.
   */
  cronNext: async req => {
    if (typeof req.cron !== 'string') throw new Error('"cron" must be a string');
    const options = isPlainObject(req.options) ? { ...req.options } : {};
    const millis = options.currentDate === undefined ? Date.now() : new Date(options.currentDate).getTime();
    delete options.currentDate;
    for (const key of ['startDate', 'endDate']) {
      if (options[key] !== undefined && options[key] !== null) options[key] = new Date(options[key]);
    }
    const currentDate =
      options.startDate && options.startDate > new Date(millis) ? new Date(options.startDate) : new Date(millis);
    const interval = parser.parseExpression(req.cron, _.defaults({ currentDate }, options));
    const count = req.count === undefined ? 1 : req.count;
    const times = [];
    for (let i = 0; i < count; i += 1) {
      try {
        times.push(interval.next().getTime());
      } catch (_err) {
        break; // past endDate: Bull ignores this error too
      }
    }
    return times;
  },
};

// ---------------------------------------------------------------------------
// The JSON-lines loop
// ---------------------------------------------------------------------------

let exitAfterReply = false;

/** Requests being handled, so that `exit` and EOF do not cut them short. */
const inFlight = new Set();

async function othersSettled(self, timeout) {
  const others = [...inFlight].filter(promise => promise !== self);
  await withTimeout(Promise.allSettled(others), timeout, 'pending requests did not finish').catch(err =>
    log(err.message)
  );
}

function reply(message) {
  return new Promise(resolve => process.stdout.write(JSON.stringify(message) + '\n', resolve));
}

async function handleLine(line, self) {
  if (!line.trim()) return;
  let req;
  try {
    req = JSON.parse(line);
    if (!isPlainObject(req)) throw new Error('a request must be a JSON object');
  } catch (err) {
    await reply({ id: null, ok: false, error: `bad request: ${err.message}`, stack: err.stack });
    return;
  }
  const id = req.id === undefined ? null : req.id;
  const command = Object.prototype.hasOwnProperty.call(COMMANDS, req.cmd) ? COMMANDS[req.cmd] : null;
  try {
    if (!command) throw new Error(`unknown command ${JSON.stringify(req.cmd)}`);
    const result = await command(req, self);
    await reply({ id, ok: true, result: toJsonSafe(result) });
  } catch (err) {
    const error = errorToJson(err);
    await reply({ id, ok: false, error: error.message, stack: error.stack });
  }
  if (req.cmd === 'exit' && exitAfterReply) process.exit(0);
}

function main() {
  log(`ready: node ${process.version}, redis ${REDIS_DESCRIPTION}`);
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on('line', line => {
    let self = null;
    self = Promise.resolve()
      .then(() => handleLine(line, self))
      .catch(err => log('internal error:', err && err.stack ? err.stack : err))
      .finally(() => inFlight.delete(self));
    inFlight.add(self);
  });
  lines.on('close', async () => {
    // The driver went away: finish what was asked, leave Redis tidy and exit.
    await othersSettled(null, DEFAULT_CLOSE_TIMEOUT_MS);
    await closeAll({ doNotWaitJobs: true, timeout: 5000 });
    process.exit(0);
  });
  process.on('unhandledRejection', err => log('unhandled rejection:', err && err.stack ? err.stack : err));
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, async () => {
      await closeAll({ doNotWaitJobs: true, timeout: 5000 });
      process.exit(0);
    });
  }
}

main();
