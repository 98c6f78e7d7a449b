'use strict';
// How a run ends, and only once, in development mode with a real redis-server and folder storage
// (review of the pipeline): a cancelled run never turns done; chunks still computing or waiting for
// a worker are never taken as dead and computed again; a run that cannot be made active never
// hangs at "started"; a run left by a server that was down is resumed, not failed as stalled; the
// half-written impressions of a merger that is gone are removed, a live writer's never.

const nodeTest = require('node:test');
const { before } = nodeTest;

// No test waits for ever: each has a time limit, and the hooks close every server and bus.
const test = (name, fn) => nodeTest.test(name, { timeout: 120_000 }, fn);
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { devPipeline, until, listen, pipelineModules } = require('./dev-pipeline');

const ROOT = path.resolve(__dirname, '..', '..');
const NATIVE = path.join(ROOT, 'target', 'release', 'tariffsim');
// The file's settings; the set-up and tear-down all pipeline test files share: dev-pipeline.js.
const pipe = devPipeline('ends', {
  TARIFFSIM_CHUNK_BUDGET: '4',
  TARIFFSIM_RETRY_DELAYS_MS: '5,10',
  TARIFFSIM_LOG_LEVEL: 'ERROR',
  TARIFFSIM_WORKERS: '1',
  // Claims and slots last 1 s without renewal; sweeps come often; a run stalls after a minute
  // of work without progress.
  TARIFFSIM_LEASE_MS: '1000',
  TARIFFSIM_SWEEP_MS: '200',
  TARIFFSIM_STALL_MS: '60000',
  // A disk with no room for reg-full's active record nor for its failure.
  TARIFFSIM_TEST_STORAGE_FULL: '^(active/DEV/reg-full\\.json|runs/reg-full/(failed|end)\\.json)$',
  // Chunks that hold their slot (and claim) longer than the lease before they compute.
  TARIFFSIM_DEBUG_HOOKS: '1',
  TARIFFSIM_FAIL_CHUNKS: 'cancel-race:slow:1500,lease-run:slow:2500',
});
const { storageDir, dataDir } = pipe;

let m;

before(async () => {
  await pipe.start();
  m = await pipelineModules();
});

const context = (id = 'ctx') => ({ awsRequestId: id, invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:tariffsim-run-simulation:DEV' });
const spec = (extra = {}) => ({ market: 'mini_market.json', scenario: 'mini_scenario.json', visits: 'mini_visits.csv', sample_size: 1000, chunk_size: 200, seed: 4, page_size: 3, ...extra });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const bus = () => m.pubsub.openBus(pipe.redis.url);
/** Every message of a run from now on (dev-pipeline.js listen). */
const listenTo = (runId) => listen(bus(), runId);
const watch = (runId, timeoutMs = 60000) => m.runs.watchRun({ storage: m.storage, bus: bus(), runId, pollMs: 200, timeoutMs });
const runDir = (runId) => path.join(storageDir, 'runs', runId);

/** A pid of this host that is not running any more (a process that has exited). */
async function deadPid() {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid;
}

function native(s) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-native-'));
  const file = path.join(dataDir, `native-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(s));
  execFileSync(NATIVE, ['simulate', file, '--out', dir, '--quiet']);
  const out = { impressions: fs.readFileSync(path.join(dir, 'impressions.csv')), summary: fs.readFileSync(path.join(dir, 'summary.json'), 'utf8') };
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(file);
  return out;
}

async function assertEqualsNative(runId, s) {
  const k = m.runs.keys(runId);
  const want = native(s);
  assert.ok((await m.storage.get(k.impressions)).equals(want.impressions), `impressions of ${runId} equal native`);
  assert.equal((await m.storage.get(k.summary)).toString('utf8'), want.summary, `summary of ${runId} equals native`);
}

test('a run cancelled while its last chunks compute stays cancelled: they finish, no merge, no run-done', async () => {
  const runId = 'cancel-race';
  const k = m.runs.keys(runId);
  const heard = await listenTo(runId);
  // Two chunks, both computing at once for 1.5 s (the budget is 4).
  await m.run({ 'request-id': runId, spec: spec({ sample_size: 400, chunk_size: 200 }) }, context('cr'));
  await until(async () => (await m.storage.list(k.claimsDir)).length === 2, 'both chunks claimed');
  // What a merger killed mid-stream left: removed once the run ends.
  const dead = `impressions.csv.${m.budget.self().host}:${await deadPid()}:0badc0de:1.tmp`;
  fs.writeFileSync(path.join(runDir(runId), dead), 'half a merge');
  const answer = await m.run({ cancel: runId, reason: 'mid-compute' }, context('cr-cancel'));
  assert.equal(answer.status, 'cancelled');
  // The chunks computing then finish and store their outputs...
  await until(async () => (await m.storage.list(k.doneDir)).length === 2, 'both chunks done');
  await m.invoke.idle();
  // ...and nothing merges them: not the chunk, not a follower (2 s to adopt), not a sweep.
  await sleep(2500);
  await m.scheduler.sweep(await m.scheduler.systemRequest('DEV'));
  await m.invoke.idle();
  await heard.stop();
  const state = await m.runs.readState(m.storage, runId, { bus: bus() });
  assert.equal(state.status, 'cancelled', JSON.stringify(state));
  assert.equal(state.cancellation.reason, 'mid-compute');
  for (const key of [k.result, k.summary, k.impressions]) assert.equal(await m.storage.get(key), null, `no ${key}`);
  assert.deepEqual(heard.events().filter((e) => e === 'run-done' || e === 'cancelled'), ['cancelled'], heard.events().join(' '));
  assert.equal(JSON.parse((await m.storage.get(k.end)).toString()).status, 'cancelled');
  assert.ok(!fs.existsSync(path.join(runDir(runId), dead)), 'the dead merger\'s file is removed when the run ends');
});

test('a run ends one way: the first end recorded wins, in storage and in readState', async () => {
  // A merge that has taken the run's end (done) refuses a later cancel or failure.
  const a = m.runs.keys('end-done-first');
  await m.storage.put(a.spec, m.runs.json({ spec: spec(), base: '', environment: 'DEV', started_at: new Date().toISOString() }));
  assert.equal(await m.runs.claimEnd(m.storage, 'end-done-first', 'done'), true);
  const b = await bus();
  assert.equal(await m.runs.cancelRun(m.storage, b, 'end-done-first', { environment: 'DEV' }), false);
  assert.equal(await m.runs.failRun(m.storage, b, 'end-done-first', { reason: 'x', environment: 'DEV' }), false);
  assert.equal(await m.storage.get(a.cancelled), null);
  assert.equal(await m.storage.get(a.failed), null);
  // A run cancelled first is never merged, even with every chunk done.
  assert.equal(await m.runs.cancelRun(m.storage, b, 'end-done-first-2', { environment: 'DEV' }), true);
  assert.equal(await m.runs.claimEnd(m.storage, 'end-done-first-2', 'done'), false);
  // Kept both ways (a run from before end.json): the one recorded first is the status.
  const c = m.runs.keys('both-ends');
  const t = Date.now();
  await m.storage.put(c.spec, m.runs.json({ spec: spec(), base: '', environment: 'DEV', started_at: new Date(t - 5000).toISOString() }));
  await m.storage.put(c.cancelled, m.runs.json({ reason: 'first', at: new Date(t - 2000).toISOString() }));
  await m.storage.put(c.result, m.runs.json({ run_id: 'both-ends', profiles: 1, impressions: 1, finished_at: new Date(t - 1000).toISOString() }));
  assert.equal((await m.runs.readState(m.storage, 'both-ends')).status, 'cancelled', 'a later result does not override an earlier end');
  await m.storage.put(c.result, m.runs.json({ run_id: 'both-ends', profiles: 1, impressions: 1, finished_at: new Date(t - 3000).toISOString() }));
  assert.equal((await m.runs.readState(m.storage, 'both-ends')).status, 'done', 'a result before the end stands');
});

test('chunks that compute (or wait for a worker) longer than the lease keep their claims: each is computed once', async () => {
  const runId = 'lease-run';
  const s = spec({ sample_size: 1000, chunk_size: 200 });
  const heard = await listenTo(runId);
  const watcher = watch(runId);
  // Five chunks of 2.5 s each (the lease is 1 s), four at once, one worker; sweeps every 200 ms.
  await m.run({ 'request-id': runId, spec: s }, context('lr'));
  let sweeping = true;
  const sweeps = (async () => {
    while (sweeping) {
      await m.scheduler.sweep(await m.scheduler.systemRequest('DEV'));
      await sleep(200);
    }
  })();
  const final = await watcher;
  sweeping = false;
  await sweeps;
  await m.invoke.idle();
  await heard.stop();
  assert.equal(final.status, 'done', JSON.stringify(final));
  await assertEqualsNative(runId, s);
  assert.deepEqual(heard.seen.filter(([e, msg]) => e === 'resumed' && msg.step === 'chunks'), [], 'no chunk taken as dead');
  assert.equal(heard.events().filter((e) => e === 'chunk-done').length, 5);
  assert.equal(final.result.usage.invocations['simulate-chunk'], 5, `each chunk invoked once: ${JSON.stringify(final.result.usage)}`);
});

test('a sweep says why it starts chunks again: a process of this host gone, or a claim not renewed', async () => {
  const runId = 'why-again';
  const k = m.runs.keys(runId);
  const request = await m.scheduler.systemRequest('DEV');
  const warnings = [];
  const log = { ...request.log, warn: (text) => warnings.push(text), info: () => {} };
  // A planned run whose chunk 0 was claimed by a process of this host that is gone, and chunk 1
  // by a process elsewhere that stopped renewing its claim 5 s ago.
  await m.storage.put(k.spec, m.runs.json({ spec: spec(), base: '', environment: 'DEV', started_at: new Date().toISOString() }));
  await m.storage.put(k.plan, m.runs.json({ chunks: 5, population: 5 }));
  await m.storage.put(k.progress, m.runs.json({ at: new Date().toISOString() }));
  await m.storage.put(k.claim(0), m.runs.json({ at: new Date().toISOString(), holder: { ...m.budget.self(), pid: await deadPid() } }));
  await m.storage.put(k.claim(1), m.runs.json({ at: new Date(Date.now() - 5000).toISOString(), holder: { host: 'elsewhere', pid: 1, boot: 'x' } }));
  await m.storage.put(k.claim(2), m.runs.json({ at: new Date().toISOString(), holder: { host: 'elsewhere', pid: 1, boot: 'x' } }));
  assert.equal(await m.scheduler.resumeRun({ ...request, log }, runId), 'running');
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0], /2 chunk\(s\) not done are started again: 1 whose process on this host is gone; 1 whose claim was not renewed for 1 s/);
  assert.deepEqual(await m.storage.list(k.claimsDir), [k.claim(2)], 'the live claim stays');
  await m.runs.cancelRun(m.storage, await bus(), runId, { environment: 'DEV' });
});

test('a run left by a server that was down for an hour is taken up, not failed as stalled', async () => {
  const runId = 'down-an-hour';
  const k = m.runs.keys(runId);
  const s = spec({ sample_size: 600, chunk_size: 200 });
  const hourAgo = new Date(Date.now() - 3600_000).toISOString();
  // Started an hour ago (the stall time is a minute), then its server died while filter-population
  // held the run's claim; nothing ran since.
  await m.storage.put(k.spec, m.runs.json({ spec: s, base: '', environment: 'DEV', started_at: hourAgo }));
  await m.storage.put(k.filterLock, m.runs.json({ at: hourAgo, holder: { ...m.budget.self(), pid: await deadPid() } }));
  await m.storage.put(m.runs.activeKey('DEV', runId), m.runs.json({ run_id: runId, environment: 'DEV', at: hourAgo }));
  const watcher = watch(runId);
  const found = await m.scheduler.sweep(await m.scheduler.systemRequest('DEV'), { freeDead: true });
  assert.equal(found[runId], 'filtering');
  const final = await watcher;
  await m.invoke.idle();
  assert.equal(final.status, 'done', JSON.stringify(final));
  await assertEqualsNative(runId, s);

  // The same with its chunks: planned, chunks 0 and 1 claimed by the dead server an hour ago, and
  // nothing running since. (Planned while the budget is held elsewhere, so that no chunk starts.)
  const runId2 = 'down-an-hour-2';
  const k2 = m.runs.keys(runId2);
  const s2 = spec({ sample_size: 600, chunk_size: 200, seed: 8 });
  const redisClient = await bus().commands();
  const others = [0, 1, 2, 3].map((i) => `elsewhere:1:busy:${i}`);
  for (const value of others) await redisClient.zAdd('tariffsim:budget:DEV', { score: Date.now() + 60_000, value });
  await m.run({ 'request-id': runId2, spec: s2 }, context('dh2'));
  await until(async () => (await m.storage.get(k2.plan)) !== null, 'the plan');
  await m.invoke.idle();
  assert.deepEqual(await m.storage.list(k2.claimsDir), [], 'no chunk started');
  const deadHolder = { ...m.budget.self(), pid: await deadPid() };
  for (const i of [0, 1]) await m.storage.put(k2.claim(i), m.runs.json({ at: new Date(Date.parse(hourAgo) + 500).toISOString(), holder: deadHolder }));
  await m.storage.put(k2.progress, m.runs.json({ at: hourAgo }));
  await redisClient.zRem('tariffsim:budget:DEV', others);
  const watcher2 = watch(runId2);
  const found2 = await m.scheduler.sweep(await m.scheduler.systemRequest('DEV'));
  assert.equal(found2[runId2], 'running');
  const clock = JSON.parse((await m.storage.get(k2.progress)).toString());
  assert.ok(Date.now() - Date.parse(clock.at) < 10_000, `the stall clock skips the hour nothing ran: ${JSON.stringify(clock)}`);
  const final2 = await watcher2;
  await m.invoke.idle();
  assert.equal(final2.status, 'done', JSON.stringify(final2));
  await assertEqualsNative(runId2, s2);
});

test('a run that cannot be made active (a full disk) fails as StorageFull, and its retries answer that', async () => {
  const runId = 'reg-full';
  const heard = await listenTo(runId);
  await assert.rejects(m.run({ 'request-id': runId, spec: spec() }, context('rf')), (/** @type {Error} */ e) => e.name === 'StorageFull' && /ENOSPC/.test(e.message));
  const state = await m.runs.readState(m.storage, runId, { bus: bus() });
  assert.equal(state.status, 'failed', JSON.stringify(state));
  assert.equal(state.failure.error_type, 'StorageFull');
  assert.equal(state.failure.lambda, 'run-simulation');
  assert.equal(state.failure.stored, false, 'its failure is kept by Redis');
  // Lambda (and the dev server) deliver an Event again after a failure: the retry answers the end.
  const again = await m.run({ 'request-id': runId, spec: spec() }, context('rf-2'));
  assert.equal(again.status, 'failed');
  await heard.stop();
  assert.equal(heard.events().filter((e) => e === 'run-failed').length, 1);
  assert.equal(await m.storage.get(m.runs.activeKey('DEV', runId)), null);
});

test('a run whose active record fails for a moment is undone: no orphan, a retry runs it to the end', async () => {
  const runId = 'reg-eio';
  const k = m.runs.keys(runId);
  const s = spec({ sample_size: 400, chunk_size: 200 });
  const active = m.runs.activeKey('DEV', runId);
  const put = m.storage.put;
  let failures = 1;
  m.storage.put = async (key, bytes) => {
    if (key === active && failures > 0) {
      failures -= 1;
      const cause = Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
      throw Object.assign(new Error(`storage write of ${key} failed (EIO)`, { cause }), { name: 'StorageWriteFailed' });
    }
    return put.call(m.storage, key, bytes);
  };
  try {
    await assert.rejects(m.run({ 'request-id': runId, spec: s }, context('re')), (/** @type {Error} */ e) => e.name === 'StorageWriteFailed');
  } finally {
    m.storage.put = put;
  }
  assert.equal(await m.storage.get(k.spec), null, 'no spec.json left behind');
  assert.equal((await m.runs.readState(m.storage, runId, { bus: bus() })).status, 'unknown');
  const watcher = watch(runId);
  assert.equal((await m.run({ 'request-id': runId, spec: s }, context('re-2'))).status, 'started');
  const final = await watcher;
  await m.invoke.idle();
  assert.equal(final.status, 'done', JSON.stringify(final));
  await assertEqualsNative(runId, s);
});

test('a merge removes the half-written impressions of writers that are gone, never a live writer\'s', async () => {
  const runId = 'stale-tmp';
  const s = spec({ sample_size: 600, chunk_size: 200, seed: 11 });
  const host = m.budget.self().host;
  const gone = await deadPid();
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  try {
    fs.mkdirSync(runDir(runId), { recursive: true });
    const names = {
      dead: `impressions.csv.${host}:${gone}:0badc0de:3.tmp`,
      legacy: `impressions.csv.${gone}.tmp`,
      alive: `impressions.csv.${host}:${live.pid}:0badc0de:1.tmp`,
      elsewhere: `impressions.csv.another-host:${gone}:0badc0de:1.tmp`,
    };
    for (const name of Object.values(names)) fs.writeFileSync(path.join(runDir(runId), name), Buffer.alloc(64 * 1024));
    const watcher = watch(runId);
    await m.run({ 'request-id': runId, spec: s }, context('st'));
    const final = await watcher;
    await m.invoke.idle();
    assert.equal(final.status, 'done', JSON.stringify(final));
    await assertEqualsNative(runId, s);
    const left = fs.readdirSync(runDir(runId)).filter((n) => n.endsWith('.tmp')).sort();
    assert.deepEqual(left, [names.elsewhere, names.alive].sort(), 'only the live writer\'s and another host\'s files stay');
  } finally {
    live.kill('SIGKILL');
  }

  // The merge's own temporary file names its writer (host, pid, thread, n).
  let seen = null;
  await m.storage.putStream('runs/stale-tmp/probe.csv', (async function* () {
    yield Buffer.from('a');
    seen = fs.readdirSync(runDir(runId)).filter((n) => n.startsWith('probe.csv.'));
    yield Buffer.from('b');
  })());
  assert.equal(seen.length, 1);
  assert.match(seen[0], new RegExp(`^probe\\.csv\\.${host.replace(/[.]/g, '\\.')}:${process.pid}:[0-9a-f]+:\\d+\\.tmp$`));
  assert.equal((await m.storage.removeStaleTemporaries('runs/stale-tmp/probe.csv')), 0);
});
