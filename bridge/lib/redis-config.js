'use strict';

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
 * A `?db=` query parameter wins over a `/db` path segment.
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
  if (url.protocol === 'rediss:') opts.tls = { servername: opts.host };
  return opts;
}

/** ioredis options for a redis://, rediss:// or unix:// URL. */
function optionsFromUrl(urlString) {
  const text = String(urlString).trim();
  if (text.startsWith('unix://')) return parseUnixUrl(text);
  if (/^rediss?:\/\//.test(text)) return parseTcpUrl(text);
  throw new Error('REDIS_URL must start with redis://, rediss:// or unix://');
}

/**
 * ioredis options from `env`: `REDIS_URL` if set, else `REDIS_HOST`, `REDIS_PORT`,
 * `REDIS_USERNAME`, `REDIS_PASSWORD`, `REDIS_DB`, defaulting to 127.0.0.1:6379 db 0.
 */
function redisOptionsFromEnv(env = process.env) {
  if (env.REDIS_URL) return optionsFromUrl(env.REDIS_URL);
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
  if (opts.path) return `unix://${auth}${opts.path}?db=${db}`;
  const host = String(opts.host).includes(':') ? `[${opts.host}]` : opts.host;
  return `${opts.tls ? 'rediss' : 'redis'}://${auth}${host}:${opts.port}/${db}`;
}

module.exports = {
  DEFAULT_HOST,
  DEFAULT_PORT,
  parseIntStrict,
  optionsFromUrl,
  redisOptionsFromEnv,
  describeRedis,
};
