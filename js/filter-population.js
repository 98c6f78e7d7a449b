'use strict';
// Lambda `filter-population`: loads the run's visits, applies its population filter, stores the
// run's own copy of its inputs (market, scenario, filtered population), plans the chunks and
// starts as many simulate-chunk lambdas as the environment's budget has free slots
// (js/runtime/scheduler.js); each chunk that has computed starts the next one, of this run or of
// another run of the environment, so that at most `chunkBudget` chunks of the environment compute
// at once. It claims the run (filter.lock, a lease) first: a second delivery while the first works
// does nothing.
//
// Handler: js/filter-population.handler
// Input:  { "run_id": "...", "request-id": "...", "depth": n }   (sent by run-simulation)
// Output: { run_id, chunks, population, invoked }

const path = require('node:path');
const { wrapHandler } = require('./runtime/wrap-handler');
const { codes, typed } = require('./runtime/errors');
const { inside, readInput } = require('./runtime/inputs');
const { pipelineOf } = require('./runtime/pipeline');
const { topic } = require('./runtime/pubsub');
const { RUN_ID, keys, json, readJson, readState, ended, failRun } = require('./runtime/runs');
const { claim, claimRecord, pumpQuietly, maybeSweep } = require('./runtime/scheduler');
const { failForStorage } = require('./runtime/chunk-pipeline');
const { recordUsage } = require('./runtime/usage');
const { planInPool } = require('./runtime/workers');

const FIELDS = new Set(['request-id', 'requestId', 'run_id', 'depth']);

async function work(input, request) {
  for (const field of Object.keys(input)) {
    if (!FIELDS.has(field)) throw typed(codes.InvalidRequest, `unknown field ${JSON.stringify(field)}: expected ${[...FIELDS].join(', ')}`);
  }
  const runId = input.run_id;
  if (typeof runId !== 'string' || !RUN_ID.test(runId)) throw typed(codes.InvalidRequest, 'run_id must be a run id');
  const { storage, bus } = pipelineOf(request);
  const k = keys(runId);
  const record = await readJson(storage, k.spec);
  if (record === null) throw typed(codes.UnknownRun, `run ${runId} does not exist: start it with run-simulation`);
  const env = request.env.name;
  try {
    const state = await readState(storage, runId, { bus });
    if (ended(state.status)) return { run_id: runId, status: state.status, invoked: 0 };
    let plan = await readJson(storage, k.plan);
    if (plan === null) {
      if (!(await claim(storage, k.filterLock, request.config.leaseMs))) {
        request.log.info(`run ${runId} is being filtered by another delivery: nothing to do`);
        return { run_id: runId, status: 'started', invoked: 0 };
      }
      plan = await planRun(storage, bus, runId, k, record, request);
    }
    // Chunks of this run (and of others waiting for the budget) start as slots are free.
    const invoked = await pumpQuietly(request);
    return { run_id: runId, chunks: plan.chunks, population: plan.population, invoked };
  } catch (e) {
    // A write the storage refuses for good (a full disk) fails the run, saying so.
    if (!(await failForStorage(storage, bus, runId, e, { lambda: 'filter-population' }, env))) throw e;
    return { run_id: runId, status: 'failed' };
  } finally {
    await recordUsage(storage, runId, request);
    await maybeSweep(request);
  }
}

async function planRun(storage, bus, runId, k, record, request) {
  let plan;
  const root = request.config.dataDir;
  const base = path.join(root, record.base);
  const { spec } = record;
  let filtered;
  try {
    // Read once per run (the run keeps its own copy); the engine caches by content.
    const market = readInput(inside(root, base, spec.market, 'market'), 'market');
    let scenario = null;
    if (spec.scenario !== null && typeof spec.scenario === 'object') scenario = JSON.stringify(spec.scenario);
    else if (spec.scenario != null) scenario = readInput(inside(root, base, spec.scenario, 'scenario'), 'scenario').toString('utf8');
    const visits = readInput(inside(root, base, spec.visits, 'visits'), 'visits');
    // Checks the scenario against the market and the spec's numbers, and filters: any of these
    // failing fails the run now rather than in every chunk. Off this thread where there is a pool.
    // The claim is renewed while the plan waits in the pool (behind a higher environment's
    // chunks, say): a run being planned never looks abandoned to the sweep.
    const renewal = setInterval(() => storage.put(k.filterLock, claimRecord()).catch(() => {}), Math.max(250, Math.floor(request.config.leaseMs / 4)));
    renewal.unref();
    let planned;
    try {
      planned = await planInPool({ market, scenario, visits, spec }, request.env.name);
    } finally {
      clearInterval(renewal);
    }
    filtered = { market, scenario, ...planned };
  } catch (e) {
    await failRun(storage, bus, runId, { lambda: 'filter-population', reason: `${e.name}: ${e.message}`, error_type: e.name, environment: request.env.name });
    throw e;
  }
  await storage.put(k.market, Buffer.from(filtered.market));
  if (filtered.scenario !== null) await storage.put(k.scenario, Buffer.from(filtered.scenario));
  await storage.put(k.population, Buffer.from(filtered.population.csv));
  plan = {
    chunks: filtered.chunks,
    population: filtered.population.count,
    sample_size: record.spec.sample_size,
    chunk_size: filtered.chunkSpec.chunk_size || 10000,
    chunk_spec: filtered.chunkSpec,
  };
  if (!(await storage.putIfAbsent(k.plan, json(plan)))) plan = await readJson(storage, k.plan);
  await storage.put(k.progress, json({ at: new Date().toISOString() }));
  await bus.publish(topic('filter-population', runId), { event: 'planned', run_id: runId, chunks: plan.chunks, population: plan.population });
  request.log.info(`run ${runId}: population ${plan.population}, ${plan.chunks} chunks, at most ${request.config.chunkBudget} of ${request.env.name} at a time`);
  return plan;
}

exports.handler = wrapHandler('filter-population', work);
