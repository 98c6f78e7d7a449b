'use strict';
// Lambda `run-simulation`: validates a run spec, takes the request id as the run's id, records the
// run, starts it (filter-population, asynchronously) and returns at once.
//
// Handler: js/run-simulation.handler
//
// Input:
//   {
//     "request-id": "optional: the run id (default: the Lambda request id)",
//     "spec": { ...run spec... }    // its market, scenario and visits are paths under the data
//                                   // folder (TARIFFSIM_DATA_DIR, default data/), the scenario
//                                   // may be given inline as an object; or a spec file path
//                                   // under the data folder, e.g. "sample/run.json"
//   }
//
// Output: { run_id, status: "started", topics: {pattern, run, population, chunks}, state_url }
//
// Starting the same run id again with the same spec returns where it stands, and takes up the
// run's work again if a process died with it (js/runtime/scheduler.js); with another spec it is a
// RunExists error. A sample_size above the environment's limit (maxSampleSize) is a
// SampleSizeTooLarge error; a `depth` at the limit (TARIFFSIM_MAX_DEPTH: the run's next call would
// pass it) is a RecursionLimit error, before anything is recorded.
//
// Cancel: { "cancel": "<run-id>", "reason"?: "..." } cancels a run: its chunks start no new work,
// its state says cancelled and a `cancelled` message goes out on its topic. Output: its state.

const path = require('node:path');
const { wrapHandler, checkJsonValue } = require('./runtime/wrap-handler');
const { withEngine, textFromFile } = require('./runtime/engine');
const { codes, typed } = require('./runtime/errors');
const { inside } = require('./runtime/inputs');
const { publicPath, scrubPaths } = require('./runtime/paths');
const { invoke } = require('./runtime/invoke');
const { pipelineOf } = require('./runtime/pipeline');
const { topic } = require('./runtime/pubsub');
const { RUN_ID, keys, json, readJson, readState, ended, topicsOf, cancelRun, failRun } = require('./runtime/runs');
const { registerRun, resumeRun, pumpQuietly } = require('./runtime/scheduler');
const { recordUsage } = require('./runtime/usage');
const { failForStorage } = require('./runtime/chunk-pipeline');

const FIELDS = new Set(['request-id', 'requestId', 'spec', 'depth']);
const CANCEL_FIELDS = new Set(['request-id', 'requestId', 'cancel', 'reason', 'depth']);

/**
 * Cancels a run of the request's environment.
 * @returns {Promise<object>} the run's state after it
 */
async function cancel(input, request) {
  for (const field of Object.keys(input)) {
    if (!CANCEL_FIELDS.has(field)) throw typed(codes.InvalidRequest, `unknown field ${JSON.stringify(field)} with cancel: expected ${[...CANCEL_FIELDS].join(', ')}`);
  }
  const runId = input.cancel;
  if (typeof runId !== 'string' || !RUN_ID.test(runId)) throw typed(codes.InvalidRequest, 'cancel must be a run id');
  if (input.reason !== undefined && (typeof input.reason !== 'string' || input.reason.length > 500)) throw typed(codes.InvalidRequest, 'reason must be text of at most 500 characters');
  const { storage, bus } = pipelineOf(request);
  const state = await readState(storage, runId, { bus });
  if (state.status === 'unknown') throw typed(codes.UnknownRun, `run ${runId} does not exist`);
  if (ended(state.status)) return state;
  await cancelRun(storage, bus, runId, { reason: input.reason || 'cancelled on request', environment: request.env.name });
  request.log.info(`run ${runId} cancelled`);
  return readState(storage, runId, { bus });
}

/**
 * A run whose start could not be recorded (spec.json or its active record): failed as StorageFull
 * when storage refused for good (the run has ended: failed.json, or Redis and this process when it
 * cannot be stored; a retry with the same id answers it), else, with `undo`, its spec.json removed
 * (the run was never started: a retry starts it). Never leaves a run that nothing would end.
 * @returns {Promise<Error>} the error to throw
 */
async function notStarted(request, runId, e, { undo = false } = {}) {
  const { storage, bus } = pipelineOf(request);
  if (await failForStorage(storage, bus, runId, e, { lambda: 'run-simulation' }, request.env.name)) {
    const state = await readState(storage, runId, { bus });
    const reason = state.failure ? state.failure.reason : scrubPaths(e.message);
    return typed(codes.StorageFull, `run ${runId} could not be started: ${reason}`, { cause: e });
  }
  if (undo) {
    try {
      await storage.delete(keys(runId).spec);
    } catch (e2) {
      // Neither made active nor undone: fail it, so that it still ends (kept by the bus if need be).
      await failRun(storage, bus, runId, { lambda: 'run-simulation', error_type: e.name, reason: `${e.name}: ${scrubPaths(e.message)}: the run could not be recorded as active (and ${e2.name}: ${scrubPaths(e2.message)}); start it again with a new request id`, environment: request.env.name }).catch(() => {});
    }
  }
  return e;
}

async function work(input, request) {
  if (input.cancel !== undefined) return cancel(input, request);
  for (const field of Object.keys(input)) {
    if (!FIELDS.has(field)) throw typed(codes.InvalidRequest, `unknown field ${JSON.stringify(field)}: expected ${[...FIELDS].join(', ')}`);
  }
  const runId = request.requestId;
  if (!RUN_ID.test(runId)) throw typed(codes.InvalidRequest, "the run id (request-id) must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit");
  // The run's chain goes one call deeper (filter-population; it hands the chunks on at its own
  // depth): a depth at the limit is refused here, before anything is recorded, rather than by
  // that call after the run is registered (a refused start leaves nothing a sweep would run).
  const limit = request.config.maxDepth || 8;
  if ((request.depth || 0) + 1 > limit) {
    throw typed(codes.RecursionLimit, `this run would call filter-population at call ${(request.depth || 0) + 1} of a chain of lambdas: the limit is ${limit}; a lambda is calling itself in a loop`);
  }
  const root = request.config.dataDir;

  // The spec as an object, and the folder (relative to the data folder) its references start from.
  const { spec, base } = withEngine((instance) => {
    let text;
    let from;
    if (typeof input.spec === 'string') {
      const file = inside(root, root, input.spec, 'spec');
      text = textFromFile(instance, file, 'run spec');
      from = path.relative(root, path.dirname(file));
    } else if (input.spec !== null && typeof input.spec === 'object' && !Array.isArray(input.spec)) {
      text = JSON.stringify(input.spec);
      from = '';
    } else {
      throw typed(codes.InvalidRequest, 'spec must be a run spec object or a spec file under the data folder');
    }
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw typed(codes.InvalidJson, `the run spec is not JSON: ${e.message}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw typed(codes.InvalidRequest, 'the run spec must be a JSON object');
    // A spec file is checked as an input is (nesting, exact whole numbers) before it is serialized again.
    checkJsonValue(parsed, 'the run spec');
    // An inline scenario (an object instead of a path) travels with the run; the core checks it
    // against the market in filter-population.
    let scenario = null;
    if (parsed.scenario !== null && typeof parsed.scenario === 'object') {
      scenario = parsed.scenario;
      parsed.scenario = 'inline';
    }
    // The environment's limit first: a run that would not end in reasonable time is refused.
    const most = request.config.maxSampleSize;
    if (typeof parsed.sample_size === 'number' && parsed.sample_size > most) {
      throw typed(codes.SampleSizeTooLarge, `sample_size ${parsed.sample_size} is more than ${request.env.name} allows (${most}): ask for fewer profiles, or run it where the limit is higher (TARIFFSIM_MAX_SAMPLE_SIZE)`);
    }
    // Parses and validates (sample size, chunk size, page size, ...): a bad spec fails here, at once.
    instance.engine.runSpec(JSON.stringify(parsed));
    for (const field of ['market', 'scenario', 'visits']) {
      if (parsed[field] != null && !(field === 'scenario' && scenario !== null)) inside(root, path.join(root, from), parsed[field], field);
    }
    if (scenario !== null) parsed.scenario = scenario;
    return { spec: parsed, base: from };
  });

  const { storage, bus } = pipelineOf(request);
  const k = keys(runId);
  const record = { spec, base, environment: request.env.name, started_at: new Date().toISOString() };
  let created;
  try {
    created = await storage.putIfAbsent(k.spec, json(record));
  } catch (e) {
    // The run cannot be recorded at all: a storage that refuses for good fails it (kept by the bus,
    // which readState reads), so that a caller following it sees it end; otherwise nothing is left.
    throw await notStarted(request, runId, e);
  }
  if (!created) {
    const existing = await readJson(storage, k.spec);
    if (JSON.stringify(existing.spec) !== JSON.stringify(spec) || existing.base !== base) {
      throw typed(codes.RunExists, `run ${runId} already exists with another spec: give a new request-id`);
    }
    let state = await readState(storage, runId, { bus });
    if (!ended(state.status)) {
      // Started again: take up its work if a process died with it (a no-op while it progresses).
      try {
        await registerRun(storage, request.env.name, runId);
      } catch (e) {
        throw await notStarted(request, runId, e);
      }
      await resumeRun(request, runId);
      await pumpQuietly(request);
      state = await readState(storage, runId, { bus });
    }
    return { run_id: runId, status: state.status, topics: topicsOf(runId), state_url: publicPath(storage.url(k.base)) };
  }
  // Active before anything else: a run whose starter dies is found by the next sweep. A run that
  // cannot be made active would be found by nothing: it fails (a storage that refuses for good) or
  // is undone (spec.json removed: a retry starts it afresh).
  try {
    await registerRun(storage, request.env.name, runId);
  } catch (e) {
    throw await notStarted(request, runId, e, { undo: true });
  }
  await bus.publish(topic('run-simulation', runId), { event: 'started', run_id: runId });
  request.log.info(`run ${runId} started: ${spec.sample_size} profiles`);
  await invoke('filter-population', { 'request-id': runId, run_id: runId }, request);
  await recordUsage(storage, runId, request);
  return { run_id: runId, status: 'started', topics: topicsOf(runId), state_url: publicPath(storage.url(k.base)) };
}

exports.handler = wrapHandler('run-simulation', work);
