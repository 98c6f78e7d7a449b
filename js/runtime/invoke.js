'use strict';
// invoke(target, message, request): how one lambda calls another, asynchronously.
//
// - Development (no AWS_LAMBDA_FUNCTION_NAME in the environment): the target's handler is called in
//   this process, after the caller's turn (like an Event invocation), with a Lambda-like context
//   whose ARN carries the caller's alias. A failing call is retried twice, as Lambda retries
//   asynchronous invocations.
// - Production: the AWS SDK for JavaScript v3 (loaded on first use, never on the synchronous path),
//   InvokeCommand with InvocationType 'Event', to the ARN built from the environment's pattern, the
//   target's function name and the caller's own alias, so DEV calls DEV and PROD calls PROD. The
//   endpoint is configurable (TARIFFSIM_LAMBDA_ENDPOINT), so any Lambda-compatible server works.
//
// Every message carries a recursion depth; a chain longer than the environment's limit stops with
// a RecursionLimit error instead of looping for ever.

const crypto = require('node:crypto');
const { codes, typed } = require('./errors');
const { LAMBDAS, FUNCTION_PREFIX, DEFAULT_REGION, handlerLocation } = require('./functions');

/** The lambdas of the monorepo (config/functions.json): target name -> module. */
const TARGETS = Object.freeze(Object.fromEntries(LAMBDAS.map((target) => [target, handlerLocation(target).file])));

const DEFAULT_ARN_PATTERN = 'arn:aws:lambda:{region}:{account}:function:{function}:{alias}';

const lambdaClients = new Map();
const inFlight = new Set();

/** The handler of a lambda of this monorepo (loaded on first use). */
function localHandler(target) {
  const { file, name } = handlerLocation(target);
  return require(file)[name];
}

/** The function name of a target: the environment's prefix (default `tariffsim-`) and the target. */
function functionName(target, settings) {
  return `${settings.functionPrefix || FUNCTION_PREFIX}${target}`;
}

/** The ARN `invoke` calls for a target from a caller in `env`. */
function targetArn(target, env, settings) {
  const own = env.arn ? env.arn.split(':') : [];
  const region = own[3] || process.env.AWS_REGION || DEFAULT_REGION;
  const account = own[4] || '000000000000';
  const alias = env.alias || env.name;
  return (settings.arnPattern || DEFAULT_ARN_PATTERN)
    .replace('{region}', region)
    .replace('{account}', account)
    .replace('{function}', functionName(target, settings))
    .replace('{target}', target)
    .replace('{alias}', alias);
}

/**
 * Runs an asynchronous invocation in this process the way Lambda runs an Event: after the caller's
 * turn, retried twice after a failure (the handler logs it), then dropped. Every attempt has the
 * event's one request id, as Lambda's retries do (a run started without a `request-id` is named by
 * it, so a retry takes up the same run).
 * @param {(event: unknown, context: object) => Promise<unknown>} handler
 * @param {unknown} event
 * @param {string} arn the invoked function's ARN (its alias is the environment)
 * @param {number[]} delays milliseconds before each retry
 * @param {string} [requestId] the event's request id (default: a new one)
 * @returns {Promise<void>} settles, never rejecting, when the event is finished: done, or failed
 *   after its retries
 */
function runAsEvent(handler, event, arn, delays, requestId = crypto.randomUUID()) {
  const run = (async () => {
    await new Promise((resolve) => setImmediate(resolve));
    for (let attempt = 0; ; attempt += 1) {
      const context = { awsRequestId: requestId, invokedFunctionArn: arn, functionName: arn.split(':')[6], attempt };
      try {
        await handler(event, context);
        return;
      } catch {
        if (attempt >= delays.length) return;
        await new Promise((resolve) => setTimeout(resolve, delays[attempt]));
      }
    }
  })();
  inFlight.add(run);
  run.finally(() => inFlight.delete(run));
  return run;
}

function local(target, message, request, arn) {
  runAsEvent(localHandler(target), message, arn, request.config.retryDelaysMs || [50, 100]);
}

async function remote(message, request, arn) {
  const sdk = require('@aws-sdk/client-lambda');
  const endpoint = request.config.lambdaEndpoint || '';
  const region = arn.split(':')[3] || process.env.AWS_REGION || DEFAULT_REGION;
  // One client per endpoint and region, made on first use (a warm instance may serve several aliases).
  const key = `${endpoint}|${region}`;
  let lambdaClient = lambdaClients.get(key);
  if (!lambdaClient) {
    lambdaClient = new sdk.LambdaClient({ region, ...(endpoint ? { endpoint } : {}) });
    lambdaClients.set(key, lambdaClient);
  }
  const out = await lambdaClient.send(
    new sdk.InvokeCommand({ FunctionName: arn, InvocationType: 'Event', Payload: Buffer.from(JSON.stringify(message)) }),
  );
  if (out.StatusCode !== 202) {
    throw typed(codes.InvokeFailed, `invoking ${arn} answered ${out.StatusCode}, expected 202`);
  }
}

/**
 * Invokes another lambda asynchronously.
 * @param {string} target a key of TARGETS
 * @param {object} message its input; `depth` is set here, and `request-id` (the caller's) unless given
 * @param {{env: object, requestId: string, config: Record<string, any>, log: import('./wrap-handler').Request['log'], depth?: number}} request
 *   the caller's request (from wrapHandler)
 * @param {{handOff?: boolean}} [options] `handOff`: the call passes the caller's work on to a
 *   sibling at the same depth (a chunk starting the next chunk of its run, a bounded chain) rather
 *   than calling deeper
 */
async function invoke(target, message, request, options = {}) {
  if (!Object.hasOwn(TARGETS, target)) throw typed(codes.InvalidRequest, `no lambda called ${JSON.stringify(target)}`);
  const depth = (request.depth || 0) + (options.handOff ? 0 : 1);
  const limit = request.config.maxDepth || 8;
  if (depth > limit) {
    throw typed(codes.RecursionLimit, `invoking ${target} would be call ${depth} of a chain of lambdas: the limit is ${limit}; a lambda is calling itself in a loop`);
  }
  // The caller's request id, unless the message names the run it is for (the scheduler starts
  // chunks of other runs than its caller's).
  const payload = { 'request-id': request.requestId, ...message, depth };
  const arn = targetArn(target, request.env, request.config);
  request.log.debug(`invoke ${target} (${arn}) depth ${depth}`);
  if (process.env.AWS_LAMBDA_FUNCTION_NAME) await remote(payload, request, arn);
  else local(target, payload, request, arn);
}

/**
 * Work an in-process invocation leaves running after it returns (a merge following a run's
 * chunks): idle() waits for it too.
 * @param {Promise<unknown>} work
 */
function track(work) {
  const settled = work.then(
    () => {},
    () => {},
  );
  inFlight.add(settled);
  settled.finally(() => inFlight.delete(settled));
  return work;
}

/** How to wait for the invocations of another thread of this process (the dev server's runner), or null. */
let remoteIdle = null;

/**
 * Makes idle() wait for another thread's invocations too (js/server/runner.js).
 * @param {(() => Promise<unknown>) | null} wait
 */
function setRemoteIdle(wait) {
  remoteIdle = wait;
}

/**
 * Resolves when no in-process invocation (or work it left running) is running, in this thread
 * or in the dev server's runner thread (tests, benchmarks, the dev server).
 */
async function idle() {
  for (;;) {
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    if (remoteIdle === null) return;
    await remoteIdle();
    if (inFlight.size === 0) return;
  }
}

module.exports = { invoke, idle, setRemoteIdle, track, runAsEvent, targetArn, functionName, localHandler, TARGETS };
