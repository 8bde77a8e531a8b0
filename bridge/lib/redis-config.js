'use strict';
const fs = require('fs');
const net = require('net');

/**
 * Redis connection settings from the environment, shared by worker.js and peer.js.
 *
 * The users' Node service is configured either with one `REDIS_URL` or with the
 * `REDIS_HOST` / `REDIS_PORT` / `REDIS_PASSWORD` / `REDIS_DB` quartet; both produce a
 * plain ioredis options object that is handed to Bull as `opts.redis`.
 *
 * We parse URLs ourselves instead of passing the string to Bull because Bull's own
 * `redisOptsFromUrl` knows neither `rediss://` (TLS) nor `unix://` sockets.
 *
 * Accepted URL forms:
 *   redis://[[user]:password@]host[:port][/db][?db=N&password=...]
 *   rediss://...                   same, with TLS (servername = host)
 *   unix:///path/to/redis.sock[?db=N&password=...&username=...]
 *   unix://[[user]:password@]/path/to/redis.sock[?db=N]
 *   redis+sentinel://[[user]:password@]host[:26379][,host[:26379]...]/service_name[/db]
 *                                  [?sentinel_password=...&sentinel_username=...]
 * A `?db=` query parameter wins over a `/db` path segment.
 *
 * Sentinel (the same URL bullpy reads): ioredis asks the Sentinels for the master of
 * `service_name`; `failoverDetector` drops the connections to the old master as soon as a
 * Sentinel announces `+switch-master`, and a READONLY reply (a demoted master still answering)
 * reconnects and resends the command, which Redis refused without running it.
 * Or from the environment: REDIS_SENTINELS=host:port,host:port + REDIS_SENTINEL_NAME
 * (+ REDIS_SENTINEL_PASSWORD), with REDIS_USERNAME / REDIS_PASSWORD / REDIS_DB for the master.
 */

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 6379;

/** Parse a decimal integer setting, or throw a message that names the setting. */
function parseIntStrict(value, what, { min = 0 } = {}) {
  const text = String(value).trim();
  if (!/^-?\d+$/.test(text)) {
    throw new Error(`${what} must be an integer, got ${JSON.stringify(value)}`);
  }
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new Error(`${what} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  }
  return n;
}

function decode(part) {
  try {
    return decodeURIComponent(part);
  } catch (_err) {
    return part;
  }
}

/** Split "user:password" (either side optional) into ioredis fields. */
function applyAuth(opts, username, password) {
  if (username) opts.username = username;
  if (password) opts.password = password;
}

/** Apply the query parameters we understand (db, password, username). */
function applyQuery(opts, params) {
  if (params.has('db')) opts.db = parseIntStrict(params.get('db'), 'REDIS_URL db');
  if (params.has('password')) opts.password = params.get('password');
  if (params.has('username')) opts.username = params.get('username');
}

/**
 * `unix://` URLs are parsed by hand: WHATWG `URL` rejects credentials without a host
 * (`unix://:secret@/run/redis.sock`), and the socket path must not be mangled.
 */
function parseUnixUrl(urlString) {
  let rest = urlString.slice('unix://'.length);
  let query = '';
  const q = rest.indexOf('?');
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const opts = {};
  const at = rest.indexOf('@');
  const slash = rest.indexOf('/');
  if (at >= 0 && (slash < 0 || at < slash)) {
    const auth = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = auth.indexOf(':');
    if (colon >= 0) {
      applyAuth(opts, decode(auth.slice(0, colon)), decode(auth.slice(colon + 1)));
    } else {
      applyAuth(opts, decode(auth), '');
    }
  }
  // "unix://localhost/run/redis.sock" is seen in the wild; drop a host part if present.
  if (!rest.startsWith('/')) {
    const firstSlash = rest.indexOf('/');
    rest = firstSlash >= 0 ? rest.slice(firstSlash) : '';
  }
  if (!rest) throw new Error('REDIS_URL: a unix:// URL needs a socket path, e.g. unix:///run/redis.sock');
  opts.path = decode(rest);
  applyQuery(opts, new URLSearchParams(query));
  return opts;
}

function parseTcpUrl(urlString) {
  let url;
  try {
    url = new URL(urlString);
  } catch (_err) {
    // Never echo the URL itself: it may carry a password.
    throw new Error('REDIS_URL is not a valid URL');
  }
  const opts = {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1') || DEFAULT_HOST,
    port: url.port ? parseIntStrict(url.port, 'REDIS_URL port', { min: 1 }) : DEFAULT_PORT,
  };
  applyAuth(opts, decode(url.username), decode(url.password));
  const segment = url.pathname.replace(/^\/+/, '').split('/')[0];
  if (segment) opts.db = parseIntStrict(segment, 'REDIS_URL db');
  applyQuery(opts, url.searchParams);
  if (url.protocol === 'rediss:') opts.tls = tlsOptions(url.searchParams, opts.host);
  return opts;
}

/**
 * TLS options from the same URL query parameters redis-py reads (`ssl_ca_certs`, `ssl_certfile`,
 * `ssl_keyfile`, `ssl_password`, `ssl_cert_reqs`, `ssl_check_hostname`), so one `rediss://` URL serves
 * both sides, client certificates included.
 */
function tlsOptions(params, host) {
  const tls = {};
  // SNI takes host names only (Node warns, DEP0123, when given an IP address).
  if (!net.isIP(host)) tls.servername = host;
  const file = (name) => {
    try {
      return fs.readFileSync(params.get(name));
    } catch (err) {
      throw new Error(`REDIS_URL ${name}: cannot read the file (${err.code || err.message})`);
    }
  };
  if (params.has('ssl_ca_certs')) tls.ca = file('ssl_ca_certs');
  if (params.has('ssl_certfile')) tls.cert = file('ssl_certfile');
  if (params.has('ssl_keyfile')) tls.key = file('ssl_keyfile');
  if (params.has('ssl_password')) tls.passphrase = params.get('ssl_password');
  if ((params.get('ssl_cert_reqs') || '').toLowerCase() === 'none') tls.rejectUnauthorized = false;
  if ((params.get('ssl_check_hostname') || '').toLowerCase() === 'false') tls.checkServerIdentity = () => undefined;
  return tls;
}

const SENTINEL_SCHEME = 'redis+sentinel://';
const DEFAULT_SENTINEL_PORT = 26379;

/** Resend a command Redis refused with READONLY: the master was demoted; reconnecting finds the new one. */
function reconnectOnReadonly(err) {
  return String((err && err.message) || '').startsWith('READONLY') ? 2 : false;
}

/** ioredis Sentinel options: `sentinels` (list of "host[:port]"), service `name`, and the master's login. */
function sentinelOptions(hosts, name, { db, username, password, sentinelUsername, sentinelPassword } = {}) {
  const sentinels = hosts.map((part) => {
    const text = part.trim();
    const m = /^\[([^\]]+)\](?::(.*))?$/.exec(text) || /^([^:]+)(?::(.*))?$/.exec(text);
    if (!m || !m[1]) throw new Error('REDIS_URL: a Sentinel host is empty');
    const port = m[2] === undefined || m[2] === '' ? DEFAULT_SENTINEL_PORT
      : parseIntStrict(m[2], 'Sentinel port', { min: 1 });
    return { host: m[1], port };
  });
  if (!sentinels.length) throw new Error('REDIS_URL: a redis+sentinel:// URL needs at least one Sentinel host');
  if (!name) throw new Error('REDIS_URL: a redis+sentinel:// URL needs a service name: redis+sentinel://host:26379/service_name');
  const opts = { sentinels, name, failoverDetector: true, reconnectOnError: reconnectOnReadonly };
  applyAuth(opts, username || '', password || '');
  if (db !== undefined) opts.db = db;
  if (sentinelUsername) opts.sentinelUsername = sentinelUsername;
  if (sentinelPassword) opts.sentinelPassword = sentinelPassword;
  return opts;
}

/** redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service_name[/db][?...] (parsed by hand:
 * WHATWG `URL` rejects a comma-separated host list). */
function parseSentinelUrl(urlString) {
  let rest = urlString.slice(SENTINEL_SCHEME.length);
  let query = '';
  const q = rest.indexOf('?');
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const slash = rest.indexOf('/');
  const netloc = slash >= 0 ? rest.slice(0, slash) : rest;
  const path = slash >= 0 ? rest.slice(slash + 1) : '';
  const at = netloc.lastIndexOf('@');
  let username = '';
  let password = '';
  if (at >= 0) {
    const auth = netloc.slice(0, at);
    const colon = auth.indexOf(':');
    username = decode(colon >= 0 ? auth.slice(0, colon) : auth);
    password = colon >= 0 ? decode(auth.slice(colon + 1)) : '';
  }
  const hosts = (at >= 0 ? netloc.slice(at + 1) : netloc).split(',').filter((h) => h.trim());
  const segments = path.split('/').filter(Boolean);
  if (segments.length > 2) throw new Error('REDIS_URL: a redis+sentinel:// path is /service_name[/db]');
  const params = new URLSearchParams(query);
  let db;
  if (segments[1] !== undefined) db = parseIntStrict(segments[1], 'REDIS_URL db');
  if (params.has('db')) db = parseIntStrict(params.get('db'), 'REDIS_URL db');
  if (params.has('password') && !password) password = params.get('password');
  return sentinelOptions(hosts, segments[0] ? decode(segments[0]) : '', {
    db,
    username,
    password,
    sentinelUsername: params.get('sentinel_username') || '',
    sentinelPassword: params.get('sentinel_password') || '',
  });
}

/** ioredis options for a redis://, rediss://, unix:// or redis+sentinel:// URL. */
function optionsFromUrl(urlString) {
  const text = String(urlString).trim();
  if (text.startsWith(SENTINEL_SCHEME)) return parseSentinelUrl(text);
  if (text.startsWith('unix://')) return parseUnixUrl(text);
  if (/^rediss?:\/\//.test(text)) return parseTcpUrl(text);
  throw new Error('REDIS_URL must start with redis://, rediss://, unix:// or redis+sentinel://');
}

/**
 * ioredis options from `env`: `REDIS_URL` if set, else `REDIS_HOST`, `REDIS_PORT`,
 * `REDIS_USERNAME`, `REDIS_PASSWORD`, `REDIS_DB`, defaulting to 127.0.0.1:6379 db 0.
 */
function redisOptionsFromEnv(env = process.env) {
  if (env.REDIS_URL) return optionsFromUrl(env.REDIS_URL);
  if (env.REDIS_SENTINELS) {
    return sentinelOptions(String(env.REDIS_SENTINELS).split(',').filter((h) => h.trim()), env.REDIS_SENTINEL_NAME || '', {
      db: env.REDIS_DB ? parseIntStrict(env.REDIS_DB, 'REDIS_DB') : undefined,
      username: env.REDIS_USERNAME || '',
      password: env.REDIS_PASSWORD || '',
      sentinelPassword: env.REDIS_SENTINEL_PASSWORD || '',
    });
  }
  const opts = {
    host: env.REDIS_HOST || DEFAULT_HOST,
    port: env.REDIS_PORT ? parseIntStrict(env.REDIS_PORT, 'REDIS_PORT', { min: 1 }) : DEFAULT_PORT,
  };
  applyAuth(opts, env.REDIS_USERNAME || '', env.REDIS_PASSWORD || '');
  if (env.REDIS_DB) opts.db = parseIntStrict(env.REDIS_DB, 'REDIS_DB');
  return opts;
}

/** A printable URL for logs: the password (if any) is replaced by "***". */
function describeRedis(opts) {
  const auth = opts.password ? `${opts.username || ''}:***@` : opts.username ? `${opts.username}@` : '';
  const db = opts.db ? opts.db : 0;
  if (opts.sentinels) {
    const hosts = opts.sentinels.map((s) => `${String(s.host).includes(':') ? `[${s.host}]` : s.host}:${s.port}`);
    const secret = opts.sentinelPassword ? '?sentinel_password=***' : '';
    return `redis+sentinel://${auth}${hosts.join(',')}/${encodeURIComponent(opts.name)}/${db}${secret}`;
  }
  if (opts.path) return `unix://${auth}${opts.path}?db=${db}`;
  const host = String(opts.host).includes(':') ? `[${opts.host}]` : opts.host;
  return `${opts.tls ? 'rediss' : 'redis'}://${auth}${host}:${opts.port}/${db}`;
}

// ---------------------------------------------------------------------------
// Redis Cluster (the same switch bullpy reads): REDIS_CLUSTER=1 makes the node that REDIS_URL (or
// REDIS_HOST/REDIS_PORT) names the startup node of an ioredis Cluster, which discovers the others;
// REDIS_CLUSTER_NODES=host:port,host:port names several startup nodes (and implies REDIS_CLUSTER),
// the login and TLS still coming from REDIS_URL / REDIS_USERNAME / REDIS_PASSWORD.
// Every queue key needs a hash tag: prefix `{bull}` (BULL_PREFIX) or a queue name like `{message-queue}`.
// ---------------------------------------------------------------------------

const FLAG_TRUE = ['1', 'true', 'yes', 'on'];
const FLAG_FALSE = ['', '0', 'false', 'no', 'off'];

function parseHostPort(text, what) {
  const part = String(text).trim();
  const m = /^\[([^\]]+)\](?::(.*))?$/.exec(part) || /^([^:]+)(?::(.*))?$/.exec(part);
  if (!m || !m[1]) throw new Error(`${what}: a host is empty`);
  const port = m[2] === undefined || m[2] === '' ? DEFAULT_PORT : parseIntStrict(m[2], `${what} port`, { min: 1 });
  return { host: m[1], port };
}

/** `{nodes, redisOptions}` for an ioredis Cluster, or null when the environment names no cluster. */
function clusterFromEnv(env = process.env) {
  const flag = String(env.REDIS_CLUSTER || '').trim().toLowerCase();
  if (!FLAG_TRUE.includes(flag) && !FLAG_FALSE.includes(flag)) {
    throw new Error(`REDIS_CLUSTER must be 1 or 0 (true/false, yes/no), got ${JSON.stringify(env.REDIS_CLUSTER)}`);
  }
  if (!FLAG_TRUE.includes(flag) && !env.REDIS_CLUSTER_NODES) return null;
  const base = redisOptionsFromEnv(env);
  if (base.path || base.sentinels) {
    throw new Error('REDIS_CLUSTER: a Redis Cluster is reached over TCP (redis:// or rediss://), not a unix socket or Sentinel');
  }
  if (base.db) throw new Error(`REDIS_CLUSTER: a Redis Cluster has only database 0, not ${base.db}`);
  const { host, port, db: _db, ...redisOptions } = base;
  const nodes = env.REDIS_CLUSTER_NODES
    ? String(env.REDIS_CLUSTER_NODES).split(',').filter((h) => h.trim()).map((h) => parseHostPort(h, 'REDIS_CLUSTER_NODES'))
    : [{ host, port }];
  if (!nodes.length) throw new Error('REDIS_CLUSTER_NODES names no node');
  return { nodes, redisOptions };
}

/** The cluster for logs: `redis-cluster://[user:***@]host:port,host:port` (never the password). */
function describeCluster(cluster) {
  const o = cluster.redisOptions;
  const auth = o.password ? `${o.username || ''}:***@` : o.username ? `${o.username}@` : '';
  const hosts = cluster.nodes.map((n) => `${String(n.host).includes(':') ? `[${n.host}]` : n.host}:${n.port}`);
  return `redis-cluster${o.tls ? '+tls' : ''}://${auth}${hosts.join(',')}`;
}

/**
 * How a Bull Queue reaches the environment's Redis: `options` to spread into `new Queue(name, {...})`,
 * `adopt(queue)` to call right after it, and `describe` for logs. One per Queue.
 *
 * A single server or Sentinel: `{redis}`. A cluster: Bull's `createClient` making ioredis Cluster clients,
 * from the ioredis that Bull itself requires. Bull closes only the clients it made itself (queue.js keeps
 * `queue.clients` empty when createClient is given), so `adopt` hands ours to `queue.clients`, which
 * `queue.close()` disconnects; clients Bull creates later (bclient, eclient) land in the same array.
 */
function bullConnection(env = process.env) {
  const cluster = clusterFromEnv(env);
  if (!cluster) {
    const redis = redisOptionsFromEnv(env);
    return { options: { redis }, adopt: () => {}, describe: describeRedis(redis), cluster: null };
  }
  const path = require('path');
  const Redis = require(require.resolve('ioredis', { paths: [path.dirname(require.resolve('bull'))] }));
  const made = [];
  const createClient = (type) => {
    // Bull refuses blocking and subscriber clients that retry commands or run a ready check
    // (MISSING_REDIS_OPTS); it reads them from a Cluster's `redisOptions`.
    const blocking = type === 'bclient' || type === 'subscriber';
    const redisOptions = blocking
      ? { ...cluster.redisOptions, maxRetriesPerRequest: null, enableReadyCheck: false }
      : { ...cluster.redisOptions };
    const client = new Redis.Cluster(cluster.nodes, { redisOptions });
    made.push(client);
    return client;
  };
  return {
    options: { createClient },
    adopt: (queue) => {
      queue.clients = made;
    },
    describe: describeCluster(cluster),
    cluster,
  };
}

module.exports = {
  DEFAULT_HOST,
  DEFAULT_PORT,
  parseIntStrict,
  optionsFromUrl,
  redisOptionsFromEnv,
  describeRedis,
  clusterFromEnv,
  describeCluster,
  bullConnection,
};
