#!/usr/bin/env node
'use strict';

/**
 * The Node Bull 4.16.5 side of benchmarks/run.py: one measurement per process, one JSON line on stdout.
 *
 *   node node_bench.js worker   <redisUrl> <prefix> <queue> <jobs> <concurrency>
 *   node node_bench.js addBulk  <redisUrl> <prefix> <queue> <jobs> <batchSize>
 *   node node_bench.js add      <redisUrl> <prefix> <queue> <jobs> <inFlight>
 *   node node_bench.js read     <redisUrl> <prefix> <queue> <expectedJobs>
 *   node node_bench.js addCeiling <redisUrl> <prefix> <queue> <jobs>
 *
 * worker: the queue is pre-loaded by run.py; timing runs from process() to the last `completed` event.
 * add/addBulk: WhatsApp-shaped jobs {number, message, delay}, attempts 3, exponential backoff 2000.
 * read: getJobs(['completed']) and toJSON() on each job.
 * addCeiling: Redis's own ceiling for adding jobs: Bull's addJob script, called with exactly the keys and
 *   arguments Bull's add() sends (its own Job and scripts.addJob build them, untimed, into a file of EVALSHA
 *   commands), then piped by `redis-cli --pipe` (C): what Redis alone takes, with no client cost at all.
 */

const childProcess = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const Queue = require(path.join(__dirname, '../bridge/node_modules/bull'));

const [mode, redisUrl, prefix, name, ...rest] = process.argv.slice(2);
const JOB_OPTS = { attempts: 3, backoff: { type: 'exponential', delay: 2000 } };

function whatsapp(i) {
  return { number: `55119${String(i).padStart(8, '0')}`, message: `Olá! Mensagem ${i} da campanha`, delay: 0 };
}

function report(result) {
  const cpu = process.cpuUsage();
  result.cpu_s = (cpu.user + cpu.system) / 1e6;
  result.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify(result) + '\n');
}

async function worker(queue, jobs, concurrency) {
  await queue.isReady();
  let done = 0;
  let t0 = 0;
  const finished = new Promise((resolve) => {
    queue.on('completed', () => {
      done += 1;
      if (done === jobs) resolve(process.hrtime.bigint());
    });
  });
  const cpu0 = process.cpuUsage();
  t0 = process.hrtime.bigint();
  queue.process(concurrency, async () => undefined);
  const t1 = await finished;
  const cpu = process.cpuUsage(cpu0);
  return { seconds: Number(t1 - BigInt(t0)) / 1e9, jobs: done, cpu_run_s: (cpu.user + cpu.system) / 1e6 };
}

async function addBulk(queue, jobs, batchSize) {
  await queue.isReady();
  const t0 = process.hrtime.bigint();
  for (let start = 0; start < jobs; start += batchSize) {
    const batch = [];
    for (let i = start; i < Math.min(jobs, start + batchSize); i++) {
      batch.push({ data: whatsapp(i), opts: JOB_OPTS });
    }
    await queue.addBulk(batch);
  }
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, jobs };
}

async function addConcurrent(queue, jobs, inFlight) {
  await queue.isReady();
  const t0 = process.hrtime.bigint();
  let next = 0;
  async function lane() {
    while (next < jobs) {
      const i = next++;
      await queue.add(whatsapp(i), JOB_OPTS);
    }
  }
  await Promise.all(Array.from({ length: inFlight }, lane));
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, jobs };
}

async function read(queue, expected) {
  await queue.isReady();
  const t0 = process.hrtime.bigint();
  const jobs = await queue.getJobs(['completed']);
  const json = jobs.map((job) => job.toJSON());
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (json.length !== expected) throw new Error(`read ${json.length} jobs, expected ${expected}`);
  return { seconds, jobs: json.length };
}

function resp(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    // As ioredis sends them: Buffers as they are, null and undefined as empty strings, the rest as text.
    const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(arg === null || arg === undefined ? '' : String(arg));
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

async function addCeiling(queue, jobs) {
  const bull = path.join(__dirname, '../bridge/node_modules/bull/lib');
  const Job = require(path.join(bull, 'job'));
  const scripts = require(path.join(bull, 'scripts'));
  const addJobScript = require(path.join(bull, 'scripts', 'addJob-6'));
  await queue.isReady();
  await queue.client.script('load', addJobScript.content);
  const sha = crypto.createHash('sha1').update(addJobScript.content).digest('hex');
  const commands = [];
  // scripts.addJob hands the keys and arguments to client.addJob: this client writes them down instead.
  const recorder = { addJob: (keysAndArgs) => commands.push(resp(['EVALSHA', sha, 6, ...keysAndArgs])) };
  for (let i = 0; i < jobs; i++) {
    const job = new Job(queue, '__default__', whatsapp(i), JOB_OPTS); // what queue.add(data, opts) builds
    const opts = job.opts;
    scripts.addJob(recorder, queue, job.toData(), {
      lifo: opts.lifo, customJobId: opts.jobId, priority: opts.priority, debounce: opts.debounce,
    });
  }
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bullpy-ceiling-')), 'add.resp');
  fs.writeFileSync(file, Buffer.concat(commands));
  const url = new URL(redisUrl);
  const argv = ['-h', url.hostname || '127.0.0.1', '-p', url.port || '6379', '-n', url.pathname.slice(1) || '0'];
  const t0 = process.hrtime.bigint();
  const input = fs.openSync(file, 'r');
  const out = childProcess.spawnSync('redis-cli', [...argv, '--pipe'], { stdio: [input, 'pipe', 'pipe'] });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  fs.closeSync(input);
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
  const text = String(out.stdout) + String(out.stderr);
  if (out.status !== 0 || !/errors: 0,/.test(text)) throw new Error(`redis-cli --pipe: ${text.trim()}`);
  return { seconds, jobs };
}

async function main() {
  const queue = new Queue(name, redisUrl, { prefix });
  queue.on('error', (err) => process.stderr.write(`queue error: ${err.stack || err}\n`));
  const n = Number(rest[0]);
  const k = Number(rest[1]);
  let result;
  if (mode === 'worker') result = await worker(queue, n, k);
  else if (mode === 'addBulk') result = await addBulk(queue, n, k);
  else if (mode === 'add') result = await addConcurrent(queue, n, k);
  else if (mode === 'read') result = await read(queue, n);
  else if (mode === 'addCeiling') result = await addCeiling(queue, n);
  else throw new Error(`unknown mode ${mode}`);
  await queue.close();
  report(result);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err.stack || err}\n`);
    process.exit(1);
  },
);
