#!/usr/bin/env node
'use strict';

/**
 * The WhatsApp sender worker: a Bull 4.16.5 consumer of `{number, message, delay}` jobs.
 *
 * This is the Node service our users run in production, kept runnable here so that
 * bullpy producers can be checked against the real thing. Everything is configured
 * from the environment (see README.md for the table):
 *
 *   REDIS_URL | REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD, REDIS_DB
 *   BULL_PREFIX (bull), QUEUE_NAME (message-queue), CONCURRENCY (1)
 *   LIMITER_MAX + LIMITER_DURATION, LOCK_DURATION, STALLED_INTERVAL, MAX_STALLED_COUNT
 *   WHATSAPP_SENDER (dry-run | whatsapp-web), DRY_RUN_LOG
 *   EXIT_WHEN_DRAINED=1, MAX_JOBS=N
 *
 * stdout carries JSON lines only (`ready`, `sent` in dry-run without DRY_RUN_LOG, `qr`,
 * `exit`); human-readable logs go to stderr.
 */

const fs = require('fs');
const Queue = require('bull');

const { bullConnection, parseIntStrict } = require('./lib/redis-config');

const DRAINED_IDLE_MS = 1000;
const DRAINED_POLL_MS = 200;

/** A configuration problem: reported as one line on stderr, exit code 2. */
class ConfigError extends Error {}

// ---------------------------------------------------------------------------
// Output helpers
// ---------------------------------------------------------------------------

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
}

function log(...parts) {
  process.stderr.write(`[worker ${new Date().toISOString()}] ${parts.join(' ')}\n`);
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

function optionalInt(env, name, min = 0) {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  try {
    return parseIntStrict(raw, name, { min });
  } catch (err) {
    throw new ConfigError(err.message);
  }
}

/** Read and validate every setting; throws ConfigError with a message naming the variable. */
function loadConfig(env = process.env) {
  let redis;
  try {
    redis = bullConnection(env); // {options, adopt, describe}: a server, Sentinel or (REDIS_CLUSTER) a cluster
  } catch (err) {
    throw new ConfigError(err.message);
  }

  const limiterMax = optionalInt(env, 'LIMITER_MAX', 1);
  const limiterDuration = optionalInt(env, 'LIMITER_DURATION', 1);
  if ((limiterMax === undefined) !== (limiterDuration === undefined)) {
    throw new ConfigError('LIMITER_MAX and LIMITER_DURATION must be set together');
  }

  // Only settings that are set are passed on, so Bull's own defaults stay in charge.
  const settings = {};
  const lockDuration = optionalInt(env, 'LOCK_DURATION', 1);
  const stalledInterval = optionalInt(env, 'STALLED_INTERVAL', 0);
  const maxStalledCount = optionalInt(env, 'MAX_STALLED_COUNT', 0);
  if (lockDuration !== undefined) settings.lockDuration = lockDuration;
  if (stalledInterval !== undefined) settings.stalledInterval = stalledInterval;
  if (maxStalledCount !== undefined) settings.maxStalledCount = maxStalledCount;

  const sender = (env.WHATSAPP_SENDER || 'dry-run').trim();
  if (!['dry-run', 'whatsapp-web'].includes(sender)) {
    throw new ConfigError(`WHATSAPP_SENDER must be "dry-run" or "whatsapp-web", got ${JSON.stringify(sender)}`);
  }

  return {
    redis,
    prefix: env.BULL_PREFIX || 'bull',
    queueName: env.QUEUE_NAME || 'message-queue',
    concurrency: optionalInt(env, 'CONCURRENCY', 1) || 1,
    limiter: limiterMax === undefined ? undefined : { max: limiterMax, duration: limiterDuration },
    settings,
    sender,
    dryRunLog: env.DRY_RUN_LOG || undefined,
    exitWhenDrained: ['1', 'true', 'yes'].includes(String(env.EXIT_WHEN_DRAINED || '').toLowerCase()),
    maxJobs: optionalInt(env, 'MAX_JOBS', 1),
  };
}

// ---------------------------------------------------------------------------
// The message logic (what the users' service does)
// ---------------------------------------------------------------------------

/**
 * Normalise a phone number to a WhatsApp chat id: an id that already contains "@c.us"
 * is kept as is; anything else keeps its digits only and gets "@c.us" appended.
 */
function toWhatsAppId(number) {
  const text = number === undefined || number === null ? '' : String(number).trim();
  if (text.includes('@c.us')) return text;
  const digits = text.replace(/\D+/g, '');
  if (!digits) throw new Error(`invalid number: ${JSON.stringify(number === undefined ? null : number)}`);
  return `${digits}@c.us`;
}

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms));
}

/** The Bull process handler: normalise, wait `delay`, send, report. */
function createProcessor(sender) {
  return async function processMessage(job) {
    const data = job.data || {};
    const to = toWhatsAppId(data.number);
    if (typeof data.delay === 'number' && Number.isFinite(data.delay) && data.delay > 0) {
      await sleep(data.delay);
    }
    const messageId = await sender.send(job, to, data.message);
    await job.progress(100);
    await job.log(`sent to ${to}`);
    return { success: true, messageId };
  };
}

// ---------------------------------------------------------------------------
// Senders
// ---------------------------------------------------------------------------

/**
 * Dry-run sender: "sends" by appending one JSON line per message to DRY_RUN_LOG (or by
 * printing it to stdout as a `sent` event).
 *
 * Test knob: when `job.data.failTimes` is an integer and `job.attemptsMade < failTimes`,
 * the send throws Error("dry-run failure <attemptsMade>"), so retries can be exercised
 * without a real phone. The knob exists in dry-run mode only.
 */
function createDryRunSender({ queueName, logFile }) {
  let counter = 0;
  return {
    name: 'dry-run',
    async send(job, to, message) {
      const failTimes = job.data && job.data.failTimes;
      if (Number.isInteger(failTimes) && job.attemptsMade < failTimes) {
        throw new Error(`dry-run failure ${job.attemptsMade}`);
      }
      counter += 1;
      const record = {
        jobId: job.id,
        queue: queueName,
        to,
        message: message === undefined ? null : message,
        messageId: `dryrun-${job.id}-${counter}`,
        sentAt: Date.now(),
      };
      if (logFile) {
        await fs.promises.appendFile(logFile, JSON.stringify(record) + '\n');
      } else {
        emit('sent', record);
      }
      return record.messageId;
    },
    async close() {},
  };
}

/**
 * Real sender over whatsapp-web.js (LocalAuth session). The package is optional and
 * loaded lazily so the bridge installs without Chromium. Resolves once the client is
 * ready; the first start prints a `qr` event to scan with the phone.
 *
 * Optional env: WHATSAPP_CLIENT_ID, WHATSAPP_SESSION_DIR (LocalAuth clientId/dataPath),
 * WHATSAPP_NO_SANDBOX=1 (Chromium --no-sandbox, for containers running as root).
 */
async function createWhatsAppSender(env) {
  let wweb;
  try {
    wweb = require('whatsapp-web.js');
  } catch (err) {
    if (err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('whatsapp-web.js')) {
      throw new ConfigError(
        'WHATSAPP_SENDER=whatsapp-web needs the whatsapp-web.js package: run `npm install whatsapp-web.js` in bridge/'
      );
    }
    throw err;
  }
  const { Client, LocalAuth } = wweb;
  const client = new Client({
    authStrategy: new LocalAuth({
      clientId: env.WHATSAPP_CLIENT_ID || undefined,
      dataPath: env.WHATSAPP_SESSION_DIR || undefined,
    }),
    puppeteer: {
      headless: true,
      args: env.WHATSAPP_NO_SANDBOX === '1' ? ['--no-sandbox', '--disable-setuid-sandbox'] : [],
    },
  });

  client.on('qr', qr => {
    emit('qr', { qr });
    log('scan the QR code with WhatsApp (Linked devices) to log in');
    try {
      require('qrcode-terminal').generate(qr, { small: true }, text => process.stderr.write(text + '\n'));
    } catch (_err) {
      // qrcode-terminal is optional; the `qr` event above carries the raw string.
    }
  });
  client.on('disconnected', reason => log('whatsapp client disconnected:', reason));

  await new Promise((resolve, reject) => {
    client.once('ready', resolve);
    client.once('auth_failure', message => reject(new Error(`whatsapp authentication failed: ${message}`)));
    client.initialize().catch(reject);
  });
  log('whatsapp client ready');

  return {
    name: 'whatsapp-web',
    async send(_job, to, message) {
      const sent = await client.sendMessage(to, message);
      return sent && sent.id ? sent.id._serialized : null;
    },
    async close() {
      await client.destroy();
    },
  };
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

async function main() {
  const config = loadConfig();
  const sender =
    config.sender === 'whatsapp-web'
      ? await createWhatsAppSender(process.env)
      : createDryRunSender({ queueName: config.queueName, logFile: config.dryRunLog });

  const queueOpts = { ...config.redis.options, prefix: config.prefix, settings: { ...config.settings } };
  if (config.limiter) queueOpts.limiter = config.limiter;
  const queue = new Queue(config.queueName, queueOpts);
  config.redis.adopt(queue);

  let shuttingDown = null;
  let drainTimer = null;

  /** Close the queue (waiting for running jobs), the sender, and exit with `code`. */
  function shutdown(reason, code = 0) {
    if (shuttingDown) return shuttingDown;
    log(`shutting down (${reason})`);
    clearInterval(drainTimer);
    shuttingDown = (async () => {
      try {
        await queue.close();
        await sender.close();
      } catch (err) {
        log('error while closing:', err && err.stack ? err.stack : err);
        code = code || 1;
      }
      emit('exit', { reason, code });
      process.exit(code);
    })();
    return shuttingDown;
  }

  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => {
      if (shuttingDown) {
        log(`second ${signal}: exiting without waiting`);
        process.exit(1);
      }
      shutdown(signal);
    });
  }

  queue.on('error', err => log('queue error:', err && err.message ? err.message : err));
  queue.on('stalled', job => log(`job ${job.id} stalled and was moved back to wait`));
  queue.on('completed', (job, result) => log(`job ${job.id} completed: ${JSON.stringify(result)}`));

  let finishedJobs = 0;
  const countFinished = () => {
    finishedJobs += 1;
    if (config.maxJobs && finishedJobs >= config.maxJobs) shutdown(`MAX_JOBS=${config.maxJobs} reached`);
  };
  queue.on('completed', countFinished);
  queue.on('failed', async (job, err) => {
    log(`job ${job.id} failed (attempt ${job.attemptsMade}): ${err && err.message}`);
    if (!config.maxJobs) return;
    // Bull emits `failed` for every failed attempt; only a final failure finishes the job.
    try {
      if ((await job.getState()) === 'failed') countFinished();
    } catch (_err) {
      // The job may already be gone (removeOnFail); it did finish.
      countFinished();
    }
  });

  // Fail fast with a clear message when Redis is unreachable (ioredis retries meanwhile).
  await queue.isReady();
  await queue.client.ping();

  queue.process('*', config.concurrency, createProcessor(sender)).catch(err => {
    log('processing stopped:', err && err.stack ? err.stack : err);
    shutdown('processing error', 1);
  });

  emit('ready', {
    queue: config.queueName,
    prefix: config.prefix,
    redis: config.redis.describe,
    concurrency: config.concurrency,
    limiter: config.limiter || null,
    settings: config.settings,
    sender: sender.name,
    dryRunLog: config.dryRunLog || null,
    exitWhenDrained: config.exitWhenDrained,
    maxJobs: config.maxJobs || null,
    pid: process.pid,
  });

  if (config.exitWhenDrained) {
    let idleSince = null;
    let polling = false;
    drainTimer = setInterval(async () => {
      if (polling || shuttingDown) return;
      polling = true;
      try {
        const counts = await queue.getJobCounts();
        if (counts.waiting + counts.delayed + counts.active === 0) {
          idleSince = idleSince === null ? Date.now() : idleSince;
          if (Date.now() - idleSince >= DRAINED_IDLE_MS) shutdown('drained');
        } else {
          idleSince = null;
        }
      } catch (err) {
        log('drain check failed:', err.message);
      } finally {
        polling = false;
      }
    }, DRAINED_POLL_MS);
  }
}

if (require.main === module) {
  main().catch(err => {
    if (err instanceof ConfigError) {
      process.stderr.write(`worker.js: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`worker.js: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
}

module.exports = { loadConfig, toWhatsAppId, createProcessor, createDryRunSender, ConfigError };
