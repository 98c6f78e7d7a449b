'use strict';
// What a run used, invocation by invocation: each lambda of a fan-out run records its own duration
// under runs/<id>/usage/<lambda>/<invocation>.json, and the merge sums them into the run's result as
//
//   usage = { invocations: {lambda: n}, billed_ms: {lambda: ms}, init_ms: {lambda: ms},
//             memory_mb?: {lambda: mb} }
//
// billed per invocation as Lambda bills (js/runtime/cost.js, config/prices.json); init_ms is the
// module initialisation of an invocation that was the first of its process (a cold start), and the
// result's `cost` prices it all at the configured memory (or the memory Lambda reported).

const { keys, json } = require('./runs');
const { emptyUsage, addInvocation, usageCost, lambdaArch, readPrices, readMemory } = require('./cost');

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
  return { lambda: request.lambda, duration_ms: performance.now() - request.started, init_ms: init, ...(memory > 0 ? { memory_mb: memory } : {}) };
}

/** Records this invocation's usage (best effort: never fails the lambda). */
async function recordUsage(storage, runId, request) {
  if (request.usageRecorded) return;
  request.usageRecorded = true;
  try {
    await storage.put(`${keys(runId).base}/usage/${request.lambda}/${invocationId(request)}.json`, json(recordOf(request)));
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
  const files = await storage.list(`${keys(runId).base}/usage`);
  const records = await Promise.all(files.map(async (f) => JSON.parse((await storage.get(f)).toString('utf8'))));
  records.forEach(add);
  if (request && !request.usageRecorded) {
    request.usageRecorded = true;
    add(recordOf(request));
  }
  const memory = readMemory();
  const memoryMb = Object.fromEntries(LAMBDAS.map((l) => [l, (usage.memory_mb && usage.memory_mb[l]) || memory[l]]));
  return { usage, cost: usageCost(usage, { memoryMb, arch: lambdaArch(process.arch), prices }) };
}

module.exports = { recordUsage, collectUsage };
