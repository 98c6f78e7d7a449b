'use strict';
// A run whose environment budget lives on a redis-server that goes away for good: no chunk can
// start, and the run must still end. Sweeps count the time the budget could not be reached
// (once the stall clock has moved past the outage's start) and fail the run as RunStalled, saying
// that Redis is the reason, after TARIFFSIM_STALL_MS of it; not before.

const nodeTest = require('node:test');
const { before } = nodeTest;

const test = (name, fn) => nodeTest.test(name, { timeout: 90_000 }, fn);
const assert = require('node:assert/strict');
const { devPipeline, pipelineModules } = require('./dev-pipeline');

const STALL_MS = 5000;
const pipe = devPipeline('redis-gone', {
  TARIFFSIM_CHUNK_BUDGET: '2',
  TARIFFSIM_LOG_LEVEL: 'ERROR',
  TARIFFSIM_WORKERS: '1',
  // A budget command waits max(2 s, lease / 2) for Redis before it fails.
  TARIFFSIM_LEASE_MS: '1000',
  TARIFFSIM_SWEEP_MS: '200',
  TARIFFSIM_STALL_MS: String(STALL_MS),
});

let m;
before(async () => {
  await pipe.start();
  m = await pipelineModules();
});

const sweep = async () => m.scheduler.sweep(await m.scheduler.systemRequest('DEV'));
const spec = () => ({ market: 'mini_market.json', scenario: 'mini_scenario.json', visits: 'mini_visits.csv', sample_size: 400, chunk_size: 200, seed: 4, page_size: 3 });

test('a run whose budget Redis is gone for good ends: RunStalled after the stall time of the outage, naming Redis', async () => {
  const runId = 'no-redis';
  const k = m.runs.keys(runId);
  const put = (key, value) => m.storage.put(key, Buffer.from(`${JSON.stringify(value)}\n`));
  // A run planned a while ago (its server was down since: that time is not counted), no chunk started.
  const long = new Date(Date.now() - 60_000).toISOString();
  await put(k.spec, { spec: spec(), base: '', environment: 'DEV', started_at: long });
  await put(k.plan, { chunks: 2, population: 10, sample_size: 400, chunk_size: 200 });
  await put(k.progress, { at: long });
  await put(m.runs.activeKey('DEV', runId), { run_id: runId, environment: 'DEV', at: long });
  await pipe.redis.stop();
  const outage = Date.now();
  let state;
  for (;;) {
    await sweep();
    state = await m.runs.readState(m.storage, runId);
    if (state.status !== 'started' && state.status !== 'running') break;
    assert.ok(Date.now() - outage < 60_000, `still ${state.status} a minute into the outage`);
  }
  assert.equal(state.status, 'failed', JSON.stringify(state));
  assert.ok(Date.now() - outage >= STALL_MS, `failed ${Date.now() - outage} ms into the outage, before the stall time`);
  assert.equal(state.failure.error_type, 'RunStalled');
  assert.match(state.failure.reason, /no chunk could start: the DEV budget's Redis \(REDIS_URL\) cannot be reached/);
  assert.equal(await m.storage.get(m.runs.activeKey('DEV', runId)), null, 'the run left the active list');
});
