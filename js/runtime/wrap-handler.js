'use strict';
// The wrapper every lambda's handler goes through:
//
//   exports.handler = wrapHandler('price', (input, request) => ...)
//
// It decodes the JSON input (an object, or JSON text or bytes), refuses payloads over Lambda's 6 MB,
// JSON nested deeper than MAX_NESTING levels and whole numbers JavaScript cannot hold exactly,
// binds the environment from the alias of the invoked ARN and the request id (the input's
// `request-id`/`requestId`, else the Lambda request id), logs tagged lines, and logs every error with
// its stack before rethrowing it, so that Lambda reports `errorType` = the error's name. An error's
// message and stack name files relative to the repository, never by absolute path (paths.js).

const { config: processConfig, resolveSecrets } = require('./config');
const { environmentOf, requestIdOf } = require('./environment');
const { createLogger, nowMs } = require('./logging');
const { codes, typed, asError } = require('./errors');
const { scrubError } = require('./paths');

/**
 * The deepest nesting of arrays and objects an input may have: the input object is level 1, a
 * profile in `profiles` level 3, a tariff's rates in `hypothetical_tariffs` level 5. Deeper JSON is
 * refused before any of it is serialized again or handed to the simulation module, whose own
 * parser stops at 128.
 */
const MAX_NESTING = 64;

function byteLength(text) {
  // A UTF-8 character takes at most 3 bytes per UTF-16 unit, so short text needs no count.
  return text.length * 3 <= 1024 ? text.length : Buffer.byteLength(text, 'utf8');
}

/** `parent` and `key` as a JSON path for messages: `spec.sample_size`, `profiles[0].region`. */
function pathOf(parent, key) {
  if (typeof key === 'number') return `${parent}[${key}]`;
  const name = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? key : JSON.stringify(key);
  return parent === '' ? name : `${parent}.${name}`;
}

/**
 * Refuses a value nested deeper than `maxNesting` levels, or holding a whole number beyond
 * ±(2^53 − 1): JSON numbers are read as doubles, and from 2^53 on not every whole number is one
 * (2^53 + 1 reads as 2^53), so such a number would not mean what was sent; or a number that is not
 * finite (JSON's `1e400` reads as Infinity, which JSON cannot write again: it would become
 * `null`, and a field's default). Iterative: any depth is checked without recursion.
 * @param {unknown} value a decoded JSON value
 * @param {string} [what] what the value is, for messages (`the input`, `the run spec`)
 * @param {number} [maxNesting]
 */
function checkJsonValue(value, what = 'the input', maxNesting = MAX_NESTING) {
  walkJson(value, what, maxNesting);
  return value;
}

/** @typedef {[Place | null, string | number]} Place a value's place in a JSON value: [its container's place, its key] */

/** The values still to look at in a walk, and their depths (reused: a walk allocates nothing). */
const pending = { values: /** @type {unknown[]} */ ([]), depths: /** @type {number[]} */ ([]), busy: false };

/**
 * checkJsonValue's walk; returns a bound of the value's JSON size in bytes (every character of a
 * string or key escaped as `\uXXXX`, every number 26 bytes: at most 25 characters, as
 * `-0.0000012345678901234567`, and a separator), so that a small input is not serialized only to
 * be measured. A value that passes is walked without allocating (a warm
 * `price` call walks its input on every request); a value that fails is walked again by
 * `refuse`, in the same order, which spells the offending value's path.
 * @param {unknown} value
 * @param {string} what
 * @param {number} maxNesting
 * @returns {number}
 */
function walkJson(value, what, maxNesting) {
  // A walk inside a walk (a getter of an object input calling a handler) gets its own stacks.
  const stack = pending.busy ? { values: [], depths: [], busy: true } : pending;
  const { values, depths } = stack;
  stack.busy = true;
  let bytes = 0;
  values[0] = value;
  depths[0] = 1;
  let top = 1;
  try {
    while (top > 0) {
      top -= 1;
      const v = values[top];
      const depth = depths[top];
      values[top] = undefined;
      if (typeof v === 'number') {
        bytes += 26;
        // An integer beyond 2^53 - 1, or a number JSON.parse read as ±Infinity (1e400) or NaN.
        if (!Number.isFinite(v) || (Number.isInteger(v) && !Number.isSafeInteger(v))) return refuse(value, what, maxNesting);
        continue;
      }
      if (typeof v === 'string') {
        bytes += 6 * v.length + 3;
        continue;
      }
      if (v === null || typeof v === 'boolean' || v === undefined) {
        bytes += 6;
        continue;
      }
      // A bigint, a function or a symbol: no JSON value (only an in-process caller can pass one).
      if (typeof v !== 'object') return refuse(value, what, maxNesting);
      if (depth > maxNesting) return refuse(value, what, maxNesting);
      bytes += 3;
      if (Array.isArray(v)) {
        for (let i = v.length - 1; i >= 0; i -= 1) {
          values[top] = v[i];
          depths[top] = depth + 1;
          top += 1;
        }
      } else {
        for (const k of Object.keys(v)) {
          bytes += 6 * k.length + 4;
          values[top] = v[k];
          depths[top] = depth + 1;
          top += 1;
        }
      }
    }
    return bytes;
  } finally {
    for (let i = 0; i < top; i += 1) values[i] = undefined;
    if (stack === pending) {
      pending.busy = false;
      // A very large input's stacks are not kept for the life of the instance.
      if (values.length > 4096) {
        pending.values = [];
        pending.depths = [];
      }
    }
  }
}

/**
 * Throws the error walkJson found in `value`, naming its place: the same walk, keeping each
 * value's place ([its container's place, its key]).
 * @param {unknown} value
 * @param {string} what
 * @param {number} maxNesting
 * @returns {never}
 */
function refuse(value, what, maxNesting) {
  /** @param {Place} place */
  const where = (place) => {
    const keys = [];
    for (let p = place; p !== null; p = p[0]) keys.push(p[1]);
    return keys.reverse().reduce((parent, key) => pathOf(parent, key), '');
  };
  /** @type {Array<[unknown, number, Place | null]>} */
  const stack = [[value, 1, null]];
  while (stack.length > 0) {
    const [v, depth, place] = stack.pop();
    if (typeof v === 'number') {
      if (Number.isNaN(v)) throw typed(codes.InvalidRequest, `${place === null ? what : where(place)} is NaN, which JSON cannot hold: give a number`);
      if (!Number.isFinite(v)) {
        throw typed(codes.InvalidRequest, `${place === null ? what : where(place)} is a number too large for a double (it reads as ${v}): give a finite number`);
      }
      if (Number.isInteger(v) && !Number.isSafeInteger(v)) {
        throw typed(
          codes.InvalidRequest,
          `${place === null ? what : where(place)} is ${v}: whole numbers must lie within ±${Number.MAX_SAFE_INTEGER} (2^53 − 1); JSON numbers beyond it are not exact in JavaScript (2^53 + 1 reads as 2^53)`,
        );
      }
      continue;
    }
    if (v === null || typeof v === 'boolean' || typeof v === 'string' || v === undefined) continue;
    if (typeof v !== 'object') throw typed(codes.InvalidRequest, `${place === null ? what : where(place)} is a ${typeof v}, which JSON cannot hold`);
    if (depth > maxNesting) {
      throw typed(codes.NestingTooDeep, `${what} is nested more than ${maxNesting} levels deep (at ${place === null ? 'the top' : where(place)}): flatten it`);
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i -= 1) stack.push([v[i], depth + 1, [place, i]]);
    } else {
      for (const k of Object.keys(v)) stack.push([v[k], depth + 1, [place, k]]);
    }
  }
  throw new Error('walkJson found a fault that its second walk did not: this is a bug');
}

/**
 * Strict UTF-8: bytes that are not UTF-8 are refused, never replaced by U+FFFD. Made on first use
 * (Lambda hands the handler an object; bytes come from tests and other callers): a TextDecoder
 * costs a cold start about 0.1 ms.
 * @type {TextDecoder | null}
 */
let utf8 = null;

function tooLarge(bytes, limit) {
  return typed(codes.PayloadTooLarge, `the input is ${bytes} bytes: Lambda accepts at most ${limit} bytes; pass large data by reference`);
}

/**
 * The input as an object.
 * @param {unknown} event what the runtime passed
 * @param {number} limit largest payload in bytes
 * @returns {Record<string, any>}
 */
function decodeInput(event, limit) {
  let input = event;
  if (typeof event === 'string' || event instanceof Uint8Array) {
    const bytes = typeof event === 'string' ? byteLength(event) : event.byteLength;
    if (bytes > limit) throw tooLarge(bytes, limit);
    let text;
    try {
      if (utf8 === null && typeof event !== 'string') utf8 = new TextDecoder('utf-8', { fatal: true });
      text = typeof event === 'string' ? event : /** @type {TextDecoder} */ (utf8).decode(event);
    } catch {
      throw typed(codes.InvalidJson, 'the input is not UTF-8 text: JSON must be UTF-8');
    }
    try {
      input = JSON.parse(text);
    } catch (e) {
      throw typed(codes.InvalidJson, `the input is not JSON: ${e.message}`);
    }
    checkJsonValue(input);
  } else if (event !== null && typeof event === 'object') {
    // Before serializing it (which recurses): a deep object is refused, not a stack overflow.
    // Only an input whose size bound passes the limit is serialized to be measured exactly.
    if (walkJson(event, 'the input', MAX_NESTING) > limit) {
      const bytes = byteLength(JSON.stringify(event));
      if (bytes > limit) throw tooLarge(bytes, limit);
    }
  }
  if (input === null || input === undefined) return {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw typed(codes.InvalidRequest, 'the input must be a JSON object');
  }
  return /** @type {Record<string, any>} */ (input);
}

function checkResponse(result, limit, knownBytes) {
  if (result === undefined) return;
  const bytes = knownBytes !== undefined ? knownBytes : byteLength(JSON.stringify(result));
  if (bytes > limit) {
    throw typed(codes.ResponseTooLarge, `the result is ${bytes} bytes: Lambda returns at most ${limit} bytes; ask for fewer profiles or rows`);
  }
}

/** @typedef {ReturnType<typeof import('./config').loadConfig>} Config */

/** @typedef {{awsRequestId?: string, invokedFunctionArn?: string, functionName?: string}} LambdaContext the parts of the Lambda context read here */

/**
 * What a lambda's work gets besides its input.
 * @typedef {object} Request
 * @property {string} lambda the lambda's name
 * @property {ReturnType<typeof environmentOf>} env the environment, from the invoked alias
 * @property {string} requestId
 * @property {number} depth how deep in a chain of lambdas calling lambdas this call is (0: first)
 * @property {Record<string, any>} config the environment's settings, secrets resolved
 * @property {ReturnType<ReturnType<typeof createLogger>['bind']>} log
 * @property {LambdaContext} context the Lambda context ({} when none)
 * @property {number | undefined} responseBytes
 * @property {number} started when the call began (nowMs)
 */

/**
 * Wraps a lambda's work into a Lambda handler.
 * @template R
 * @param {string} lambda the lambda's name, for logs
 * @param {(input: Record<string, any>, request: Request) => R} work
 *   the lambda's work; it may set `request.responseBytes` to the size of its result's JSON when it
 *   knows it, which spares the wrapper serializing the result to check Lambda's limit
 * @param {{config?: Config, logger?: ReturnType<typeof createLogger>}} [options] for tests
 * @returns {(event: unknown, context?: LambdaContext) => Promise<Awaited<R>>}
 */
function wrapHandler(lambda, work, options = {}) {
  const cfg = options.config || processConfig;
  const logger = options.logger || createLogger({ format: cfg.logFormat, lineBreak: cfg.lineBreak });
  /**
   * @param {unknown} event
   * @param {LambdaContext} [context]
   * @returns {Promise<Awaited<R>>}
   */
  return async function handler(event, context) {
    const started = nowMs();
    const env = environmentOf(context);
    let log = logger.bind(env.name, (context && context.awsRequestId) || 'no-request-id');
    try {
      // Made on the environment's first request: a bad setting is this request's InvalidConfig.
      const settings = cfg.forEnvironment(env.name);
      if (settings.logLevel !== 'INFO') log = logger.bind(env.name, log.requestId, settings.logLevel);
      const input = decodeInput(event, settings.maxPayloadBytes);
      const requestId = requestIdOf(input, context);
      if (requestId !== log.requestId) log = logger.bind(env.name, requestId, settings.logLevel);
      const depth = input.depth === undefined ? 0 : input.depth;
      if (!Number.isSafeInteger(depth) || depth < 0) throw typed(codes.InvalidRequest, 'depth must be a whole number from 0');
      if (depth > settings.maxDepth) {
        throw typed(codes.RecursionLimit, `this is call ${depth} of a chain of lambdas calling lambdas: the limit is ${settings.maxDepth}; a lambda is calling itself in a loop`);
      }
      // The fan-out lambdas reach Redis and storage, whose settings may be secrets (SSM
      // references, fetched once and cached); `price` never does, and loads no AWS SDK.
      const resolved = lambda === 'price' ? settings : await resolveSecrets(settings);
      /** @type {Request} */
      const request = { lambda, env, requestId, depth, config: resolved, log, context: context || {}, responseBytes: undefined, started };
      const result = await work(input, request);
      checkResponse(result, settings.maxPayloadBytes, request.responseBytes);
      log.info(`${lambda} done in ${(nowMs() - started).toFixed(2)} ms`);
      return result;
    } catch (thrown) {
      const err = scrubError(asError(thrown));
      log.error(`${lambda} failed after ${(nowMs() - started).toFixed(2)} ms`, err);
      throw err;
    }
  };
}

module.exports = { wrapHandler, decodeInput, checkJsonValue, MAX_NESTING };
