'use strict';
// What the lambdas of a fan-out run share: the run storage and the pub/sub bus of the request's
// environment, opened once per process and environment (module scope, reused by warm calls).

const { openStorage } = require('./storage');
const { openBus } = require('./pubsub');

const opened = new Map();

/**
 * The storage and bus for a request's environment.
 * @param {{config: {environment: string, storage: string, s3Endpoint?: string, redisUrl?: string}}} request
 * @returns {{storage: object, bus: object}}
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
