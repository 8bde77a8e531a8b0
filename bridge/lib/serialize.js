'use strict';

/**
 * Turn whatever a Bull call returned into a JSON-safe value for the peer protocol.
 *
 *   Job                 -> job.toJSON() (the shape Node exposes, see lib/job.js toJSON)
 *   Error               -> {message, stack} (plus `name` and `code` when present)
 *   undefined, function -> null (object members holding them are dropped, as JSON.stringify drops them)
 *   Date                -> epoch ms
 *   Buffer              -> utf-8 string
 *   Map / Set           -> object / array
 *   NaN, +-Infinity     -> null (as JSON.stringify would)
 * Cycles become the string "[Circular]" rather than throwing.
 */

const Job = require('bull/lib/job');

function errorToJson(err) {
  const out = { message: String(err && err.message), stack: (err && err.stack) || null };
  if (err && err.name && err.name !== 'Error') out.name = err.name;
  if (err && err.code !== undefined) out.code = err.code;
  return out;
}

function toJsonSafe(value, seen = new WeakSet()) {
  if (value === undefined || value === null || typeof value === 'function' || typeof value === 'symbol') {
    return null;
  }
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object') return value;

  if (value instanceof Job) return toJsonSafe(value.toJSON(), seen);
  if (value instanceof Error) return errorToJson(value);
  if (value instanceof Date) return value.getTime();
  if (Buffer.isBuffer(value)) return value.toString('utf8');

  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map(item => toJsonSafe(item, seen));
    if (value instanceof Set) return [...value].map(item => toJsonSafe(item, seen));
    if (value instanceof Map) {
      const out = {};
      for (const [k, v] of value) out[String(k)] = toJsonSafe(v, seen);
      return out;
    }
    if (typeof value.toJSON === 'function') return toJsonSafe(value.toJSON(), seen);
    const out = {};
    for (const key of Object.keys(value)) {
      const item = value[key];
      if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
      out[key] = toJsonSafe(item, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

module.exports = { toJsonSafe, errorToJson };
