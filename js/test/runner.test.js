'use strict';
// The dev server's runner thread (js/server/runner.js) dying mid-run: a new one starts by itself,
// and its sweep takes the run up, to the end, equal to the native command's output.

const nodeTest = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const test = (name, fn) => nodeTest.test(name, { timeout: 180_000 }, fn);
const ROOT = path.resolve(__dirname, '..', '..');
const NATIVE = path.join(ROOT, 'target', 'release', 'tariffsim');
const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-runner-'));
let app;
let endpoint;

nodeTest.before(async () => {
  Object.assign(process.env, { TARIFFSIM_STORAGE: storageDir, TARIFFSIM_LOG_LEVEL: 'WARN', TARIFFSIM_SWEEP_MS: '300' });
  delete process.env.AWS_LAMBDA_FUNCTION_NAME;
  delete process.env.REDIS_URL;
  const { buildServer } = require('../server/server');
  app = buildServer();
  endpoint = await app.listen({ host: '127.0.0.1', port: 0 });
});

nodeTest.after(async () => {
  await require('../runtime/invoke').idle();
  await app.close();
  fs.rmSync(storageDir, { recursive: true, force: true });
});

test('the runner thread killed mid-run: a new one starts and the run ends done, equal to native', async () => {
  const { runnerThread } = require('../server/runner');
  const { keys, watchRun } = require('../runtime/runs');
  const { openStorage } = require('../runtime/storage');
  const { openBus } = require('../runtime/pubsub');
  const runId = 'runner-killed';
  const spec = { market: 'sample/market.json', visits: 'sample/visits.csv', sample_size: 30000, chunk_size: 1000, seed: 5, page_size: 10 };
  const res = await fetch(`${endpoint}/lambdas/run-simulation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ 'request-id': runId, spec }) });
  assert.equal(res.status, 200, await res.clone().text());
  // Killed once a chunk is done and before the run is.
  const doneDir = path.join(storageDir, keys(runId).doneDir);
  const count = () => (fs.existsSync(doneDir) ? fs.readdirSync(doneDir).filter((f) => !f.endsWith('.tmp')).length : 0);
  while (count() === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  const first = runnerThread();
  assert.ok(first, 'a runner thread runs the run');
  await first.terminate();
  assert.ok(count() < 30, 'the run was not over when its runner was killed');
  const final = /** @type {{status: string, result?: {profiles: number, impressions_url: string}}} */ (
    await watchRun({ storage: openStorage(storageDir), bus: openBus(null), runId, pollMs: 200, timeoutMs: 120_000 })
  );
  assert.equal(final.status, 'done', JSON.stringify(final));
  assert.notEqual(runnerThread(), first, 'a new runner thread took over');
  assert.equal(final.result?.profiles, 30000);
  // Equal to the native command's output.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-runner-native-'));
  try {
    const file = path.join(dir, 'spec.json');
    fs.writeFileSync(file, JSON.stringify({ ...spec, market: path.join(ROOT, 'data', spec.market), visits: path.join(ROOT, 'data', spec.visits) }));
    execFileSync(NATIVE, ['simulate', file, '--out', dir, '--quiet']);
    const got = await openStorage(storageDir).get(keys(runId).impressions);
    assert.ok(got !== null && got.equals(fs.readFileSync(path.join(dir, 'impressions.csv'))), 'impressions differ from native');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an Event accepted in the instant its runner thread dies is run by the next one', async () => {
  const { acquireRunner, runnerThread } = require('../server/runner');
  const { watchRun } = require('../runtime/runs');
  const { openStorage } = require('../runtime/storage');
  const { openBus } = require('../runtime/pubsub');
  const held = acquireRunner();
  try {
    const runner = held.get();
    const runId = 'runner-event-lost';
    const spec = { market: 'sample/market.json', visits: 'sample/visits.csv', sample_size: 3000, chunk_size: 1000, seed: 5, page_size: 10 };
    // The thread is being stopped when the Event reaches it (as when it crashes just then): the
    // dying thread drops the message, after the caller had its 202.
    const stopping = runner.worker.terminate();
    runner.event('run-simulation', JSON.stringify({ 'request-id': runId, spec }), 'arn:aws:lambda:eu-west-2:000000000000:function:tariffsim-run-simulation', [50, 100]);
    await stopping;
    const final = /** @type {{status: string, result?: {profiles: number}}} */ (
      await watchRun({ storage: openStorage(storageDir), bus: openBus(null), runId, pollMs: 200, timeoutMs: 60_000 })
    );
    assert.equal(final.status, 'done', JSON.stringify(final));
    assert.equal(final.result?.profiles, 3000);
    assert.notEqual(runnerThread(), runner.worker, 'a new runner thread ran it');
  } finally {
    await held.release();
  }
});

test('an Event its runner died with is delivered again under its request id: a run started without one is taken up, not started twice', async () => {
  const { acquireRunner } = require('../server/runner');
  const { keys, watchRun } = require('../runtime/runs');
  const { openStorage } = require('../runtime/storage');
  const { openBus } = require('../runtime/pubsub');
  const runsDir = path.join(storageDir, 'runs');
  const before = new Set(fs.existsSync(runsDir) ? fs.readdirSync(runsDir) : []);
  const held = acquireRunner();
  try {
    const runner = held.get();
    // No request-id in the input: the run is named by the invocation's request id.
    const requestId = 'runner-event-again';
    const spec = { market: 'sample/market.json', visits: 'sample/visits.csv', sample_size: 20000, chunk_size: 1000, seed: 5, page_size: 10 };
    runner.event('run-simulation', JSON.stringify({ spec }), 'arn:aws:lambda:eu-west-2:000000000000:function:tariffsim-run-simulation', [50, 100], requestId);
    // Killed once the run is recorded, before the Event finished.
    const specKey = path.join(storageDir, keys(requestId).spec);
    while (!fs.existsSync(specKey)) await new Promise((resolve) => setTimeout(resolve, 2));
    await runner.worker.terminate();
    const final = /** @type {{status: string, result?: {profiles: number}}} */ (
      await watchRun({ storage: openStorage(storageDir), bus: openBus(null), runId: requestId, pollMs: 200, timeoutMs: 60_000 })
    );
    assert.equal(final.status, 'done', JSON.stringify(final));
    await require('../runtime/invoke').idle();
    const started = fs.readdirSync(runsDir).filter((r) => !before.has(r));
    assert.deepEqual(started, [requestId], 'one run, under the Event\'s request id');
  } finally {
    await held.release();
  }
});
