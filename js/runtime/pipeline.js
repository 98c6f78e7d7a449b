'use strict';
// What the lambdas of a fan-out run share: the run storage and the pub/sub bus of the request's
// environment, opened once per process and environment (module scope, reused by warm calls).

const { openStorage } = require('./storage');
const { openBus } = require('./pubsub');

const opened = new Map();

/** @typedef {InstanceType<typeof import('./storage').FolderStorage> | InstanceType<typeof import('./storage').S3Storage>} Storage a run storage (a folder or S3) */
/** @typedef {InstanceType<typeof import('./pubsub').EmbeddedBus> | InstanceType<typeof import('./pubsub').RedisBus>} Bus a pub/sub bus (embedded or Redis) */
/** @typedef {{storage: Storage, bus: Bus}} Pipeline what the lambdas of a run share */
/**
 * A lambda's request (js/runtime/wrap-handler.js; a sweep's has no responseBytes) with the settings a
 * run's pipeline reads.
 * @typedef {Omit<import('./wrap-handler').Request, 'responseBytes'> & {config: {environment: string, storage: string, s3Endpoint?: string,
 *   redisUrl?: string, chunkBudget: number, leaseMs?: number}}} RunRequest
 */

/**
 * The storage and bus for a request's environment.
 * @param {{config: {environment: string, storage: string, s3Endpoint?: string, redisUrl?: string}}} request
 * @returns {Pipeline}
 */
function pipelineOf(request) {
  const c = request.config;
  const key = `${c.storage}|${c.s3Endpoint || ''}|${c.redisUrl || ''}`;
  let p = opened.get(key);
  if (!p) {
    p = {
      storage: openStorage(c.storage, { endpoint: c.s3Endpoint || undefined }),
      bus: openBus(c.redisUrl),
    };
    opened.set(key, p);
  }
  return p;
}

module.exports = { pipelineOf };
