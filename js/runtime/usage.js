'use strict';
// What a run used, invocation by invocation: each lambda of a fan-out run records its own duration
// under runs/<id>/usage/<lambda>/<invocation>.json, and the merge sums them into the run's result as
//
//   usage = { invocations: {lambda: n}, billed_ms: {lambda: ms}, init_ms: {lambda: ms} }
//
// billed per invocation rounded up to the millisecond, as Lambda bills; init_ms is the module
// initialisation of an invocation that was the first of its process (a cold start).

const { keys, json } = require('./runs');

const LAMBDAS = Object.freeze(['run-simulation', 'filter-population', 'simulate-chunk']);

/** Module initialisation cost of this process, charged once to the first invocation. */
const processInit = { ms: performance.now(), charged: false };

function invocationId(request) {
  return (request.context && request.context.awsRequestId) || `${process.pid}-${Math.random().toString(36).slice(2)}`;
}

/** One invocation's record: its duration so far (and the process's init, on its first call). */
function recordOf(request) {
  const init = processInit.charged ? 0 : processInit.ms;
  processInit.charged = true;
  return { lambda: request.lambda, duration_ms: performance.now() - request.started, init_ms: init };
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

/** Sums usage records (plus, optionally, the calling invocation's own, not yet recorded). */
async function collectUsage(storage, runId, request) {
  const usage = { invocations: {}, billed_ms: {}, init_ms: {} };
  for (const l of LAMBDAS) {
    usage.invocations[l] = 0;
    usage.billed_ms[l] = 0;
    usage.init_ms[l] = 0;
  }
  const add = (r) => {
    usage.invocations[r.lambda] = (usage.invocations[r.lambda] || 0) + 1;
    usage.billed_ms[r.lambda] = (usage.billed_ms[r.lambda] || 0) + Math.max(1, Math.ceil(r.duration_ms));
    usage.init_ms[r.lambda] = (usage.init_ms[r.lambda] || 0) + Math.ceil(r.init_ms);
  };
  const files = await storage.list(`${keys(runId).base}/usage`);
  const records = await Promise.all(files.map(async (f) => JSON.parse((await storage.get(f)).toString('utf8'))));
  records.forEach(add);
  if (request && !request.usageRecorded) {
    request.usageRecorded = true;
    add(recordOf(request));
  }
  return usage;
}

module.exports = { recordUsage, collectUsage };
