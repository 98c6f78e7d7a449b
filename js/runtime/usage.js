'use strict';
// What a run used, invocation by invocation: each lambda of a fan-out run records its own duration
// under runs/<id>/usage/<lambda>/<invocation>.json (in development, where the lambdas share a
// process, batched: runs/<id>/usage/batch/<pid>-<n>.json, a list), and the merge sums them into the
// run's result as
//
//   usage = { invocations: {lambda: n}, billed_ms: {lambda: ms}, init_ms: {lambda: ms},
//             memory_mb?: {lambda: mb} }
//
// billed per invocation as Lambda bills (js/runtime/cost.js, config/prices.json); init_ms is the
// module initialisation of an invocation that was the first of its process (a cold start), and the
// result's `cost` prices it all at the configured memory (or the memory Lambda reported).

const { keys, json } = require('./runs');
const { emptyUsage, addInvocation, usageCost, lambdaArch, readPrices, readMemory } = require('./cost');

/** The clock of `request.started` (wrapHandler's: the logger's monotonic clock). */
const now = require('./logging').nowMs || (() => performance.now());

const LAMBDAS = Object.freeze(['run-simulation', 'filter-population', 'simulate-chunk']);

/** Module initialisation cost of this process, charged once to the first invocation. */
const processInit = { ms: performance.now(), charged: false };

function invocationId(request) {
  return (request.context && request.context.awsRequestId) || `${process.pid}-${Math.random().toString(36).slice(2)}`;
}

/**
 * One invocation's record: its duration so far, the process's init on its first call (meaningful
 * in Lambda, where a process is an instance), and the memory Lambda gave it.
 */
function recordOf(request) {
  const init = processInit.charged ? 0 : processInit.ms;
  processInit.charged = true;
  const memory = Number(request.context && request.context.memoryLimitInMB);
  return { lambda: request.lambda, duration_ms: Math.max(0, now() - request.started), init_ms: init, ...(memory > 0 ? { memory_mb: memory } : {}) };
}

/**
 * In development the lambdas run in this process, which outlives them: a run's records are kept
 * here and stored together (usage/batch/<pid>-<n>.json, a list) at most once a second, rather than
 * one object per invocation (a run of 200 chunks made 200 small files); collectUsage sums the
 * stored ones and those kept. In Lambda each invocation stores its own record at once.
 */
const kept = new Map();
const BATCH_MS = 1000;
let batches = 0;

function flushKept(where) {
  const entry = kept.get(where);
  if (!entry || entry.records.length === 0) return entry ? entry.flushing : Promise.resolve();
  clearTimeout(entry.timer);
  entry.timer = null;
  const records = entry.records.splice(0);
  batches += 1;
  const key = `${keys(entry.runId).base}/usage/batch/${process.pid}-${Date.now()}-${batches}.json`;
  const previous = entry.flushing;
  entry.flushing = previous
    .then(() => entry.storage.put(key, json(records)))
    .catch((e) => entry.log.warn(`could not record usage of run ${entry.runId}: ${e.message}`));
  entry.flushing.then(() => {
    if (entry.records.length === 0 && entry.timer === null && kept.get(where) === entry) kept.delete(where);
  });
  return entry.flushing;
}

/** Records this invocation's usage (best effort: never fails the lambda). */
async function recordUsage(storage, runId, request) {
  if (request.usageRecorded) return;
  request.usageRecorded = true;
  const record = recordOf(request);
  if (!process.env.AWS_LAMBDA_FUNCTION_NAME) {
    const where = storage.url(keys(runId).base);
    let entry = kept.get(where);
    if (!entry) {
      entry = { storage, runId, log: request.log, records: [], timer: null, flushing: Promise.resolve() };
      kept.set(where, entry);
    }
    entry.records.push(record);
    if (entry.timer === null) {
      entry.timer = setTimeout(() => flushKept(where), BATCH_MS);
      entry.timer.unref();
    }
    return;
  }
  try {
    await storage.put(`${keys(runId).base}/usage/${request.lambda}/${invocationId(request)}.json`, json(record));
  } catch (e) {
    request.log.warn(`could not record usage of run ${runId}: ${e.message}`);
  }
}

/**
 * Sums usage records (plus, optionally, the calling invocation's own, not yet recorded) in the
 * shape `js/runtime/cost.js` prices, and prices them.
 * @returns {Promise<{usage: object, cost: object}>}
 */
async function collectUsage(storage, runId, request) {
  const prices = readPrices();
  const usage = emptyUsage(LAMBDAS);
  const add = (r) => addInvocation(usage, r.lambda, { durationMs: r.duration_ms, initMs: r.init_ms, memoryMb: r.memory_mb }, prices);
  // Records kept in this process are stored first, so that each is counted once.
  await flushKept(storage.url(keys(runId).base));
  const files = await storage.list(`${keys(runId).base}/usage`);
  const records = await Promise.all(files.map(async (f) => JSON.parse((await storage.get(f)).toString('utf8'))));
  records.flat().forEach(add);
  if (request && !request.usageRecorded) {
    request.usageRecorded = true;
    add(recordOf(request));
  }
  const memory = readMemory();
  const memoryMb = Object.fromEntries(LAMBDAS.map((l) => [l, (usage.memory_mb && usage.memory_mb[l]) || memory[l]]));
  return { usage, cost: usageCost(usage, { memoryMb, arch: lambdaArch(process.arch), prices }) };
}

module.exports = { recordUsage, collectUsage, now };
