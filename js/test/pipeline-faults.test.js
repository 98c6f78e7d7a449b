'use strict';
// Runs that always end (issue 12), in development mode with a real redis-server: duplicate and
// concurrent starts, cancel, one budget per environment over all runs, a full disk, a stalled
// run, the sample-size limit. Every wait has a timeout and every test asserts the end state: done
// and equal to the native command's output, or failed/cancelled with its reason.

const nodeTest = require('node:test');
const { before } = nodeTest;

// No test waits for ever: each has a time limit (a hang fails, naming the test), and the hooks close
// every server, bus and subscription even when a test failed.
const test = (name, fn) => nodeTest.test(name, { timeout: 180_000 }, fn);
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, execFile } = require('node:child_process');
const { promisify } = require('node:util');
const { devPipeline, listen } = require('./dev-pipeline');

const ROOT = path.resolve(__dirname, '..', '..');
const NATIVE = path.join(ROOT, 'target', 'release', 'tariffsim');
// The file's settings; the set-up and tear-down all pipeline test files share: dev-pipeline.js.
const pipe = devPipeline('faults', {
  TARIFFSIM_CHUNK_BUDGET: '3',
  TARIFFSIM_RETRY_DELAYS_MS: '5,10',
  TARIFFSIM_LOG_LEVEL: 'ERROR',
  TARIFFSIM_WORKERS: '2',
  TARIFFSIM_LEASE_MS: '4000',
  // A disk that is full for these runs' chunk 3 and their failure record (disk-full-chunk), and
  // for the merged impressions (disk-full-merge).
  TARIFFSIM_TEST_STORAGE_FULL: '^runs/(disk-full-chunk/(chunks/000003\\.csv|failed\\.json|attempts/)|disk-full-merge/impressions\\.csv)',
  TARIFFSIM_MAX_SAMPLE_SIZE_DEV: '1000000',
  // The budget runs' chunks hold their slot 50 ms longer: they overlap however fast they compute.
  TARIFFSIM_DEBUG_HOOKS: '1',
  TARIFFSIM_FAIL_CHUNKS: 'budget-0:slow:50,budget-1:slow:50,budget-2:slow:50',
});
const { storageDir, dataDir } = pipe;

let m;

before(async () => {
  await pipe.start();
  m = {
    run: require('../run-simulation').handler,
    chunk: require('../simulate-chunk').handler,
    invoke: require('../runtime/invoke'),
    runs: require('../runtime/runs'),
    pubsub: require('../runtime/pubsub'),
    storage: require('../runtime/storage').openStorage(storageDir),
    pipeline: require('../runtime/chunk-pipeline'),
    scheduler: require('../runtime/scheduler'),
    workers: require('../runtime/workers'),
  };
});

const context = (id = 'ctx', env = 'DEV') => ({ awsRequestId: id, invokedFunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:tariffsim-run-simulation:${env}` });

function spec(extra = {}) {
  return { market: 'mini_market.json', scenario: 'mini_scenario.json', visits: 'mini_visits.csv', sample_size: 2345, chunk_size: 200, seed: 9, page_size: 3, ...extra };
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

const bus = () => m.pubsub.openBus(pipe.redis.url);
/** Every message of a run from now on (dev-pipeline.js listen). */
const listenTo = (runId) => listen(bus(), runId);
const watch = (runId, timeoutMs = 60000) => m.runs.watchRun({ storage: m.storage, bus: bus(), runId, pollMs: 200, timeoutMs });

async function assertEqualsNative(runId, s) {
  const k = m.runs.keys(runId);
  const want = native(s);
  assert.ok((await m.storage.get(k.impressions)).equals(want.impressions), `impressions of ${runId} equal native`);
  assert.equal((await m.storage.get(k.summary)).toString('utf8'), want.summary, `summary of ${runId} equals native`);
}

test('duplicate and concurrent starts with one request id end exactly once, equal to native', async () => {
  const s = spec({ sample_size: 3000, chunk_size: 200 });
  const heard = await listenTo('same-id');
  const watcher = watch('same-id');
  const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => m.run({ 'request-id': 'same-id', spec: s }, context(`dup-${i}`))));
  for (const a of answers) assert.equal(a.run_id, 'same-id');
  const final = await watcher;
  await m.invoke.idle();
  assert.equal(final.status, 'done', JSON.stringify(final));
  await assertEqualsNative('same-id', s);
  // Started again once it is done: where it stands, nothing more.
  const again = await m.run({ 'request-id': 'same-id', spec: s }, context('dup-late'));
  assert.equal(again.status, 'done');
  await m.invoke.idle();
  await new Promise((resolve) => setTimeout(resolve, 200));
  await heard.stop();
  const events = heard.seen.map(([e]) => e);
  assert.equal(events.filter((e) => e === 'run-done').length, 1, 'run-done once');
  assert.equal(events.filter((e) => e === 'started').length, 1, 'started once');
  assert.equal(events.filter((e) => e === 'planned').length, 1, 'planned once');
  assert.equal(events.filter((e) => e === 'chunk-done').length, final.chunks, 'each chunk done once');
  // Each chunk computed once: one simulate-chunk invocation per chunk, not one per start.
  assert.equal(final.result.usage.invocations['simulate-chunk'], final.chunks, JSON.stringify(final.result.usage));
});

test('cancel: the chunks stop starting new work, the state says cancelled, a cancelled message', async () => {
  const s = spec({ sample_size: 60000, chunk_size: 200 });
  const heard = await listenTo('to-cancel');
  const watcher = watch('to-cancel');
  const k = m.runs.keys('to-cancel');
  let cancelled = null;
  const unsubscribe = await bus().subscribe('tariffsim:simulate-chunk:to-cancel', (msg) => {
    if (cancelled === null && msg.event === 'chunk-done') {
      cancelled = m.run({ cancel: 'to-cancel', reason: 'test' }, context('cancel-1')).then(async (answer) => ({ answer, claimed: (await m.storage.list(k.claimsDir)).length }));
    }
  });
  await m.run({ 'request-id': 'to-cancel', spec: s }, context('start-cancel'));
  const final = await watcher;
  await unsubscribe();
  const { answer, claimed } = await cancelled;
  assert.equal(answer.status, 'cancelled');
  await m.invoke.idle();
  assert.equal(final.status, 'cancelled', JSON.stringify(final));
  assert.equal(final.cancellation.reason, 'test');
  const doneAfter = (await m.storage.list(k.doneDir)).length;
  const claimsAfter = (await m.storage.list(k.claimsDir)).length;
  assert.ok(doneAfter < 300, `only the chunks already started finished: ${doneAfter} of 300`);
  // At most the scheduler rounds under way when the cancel landed claim one more chunk each (the
  // budget is 3); those chunks read that the run ended and do not compute.
  assert.ok(claimsAfter <= claimed + 6, `no new work after the cancel: ${claimed} claimed then, ${claimsAfter} now`);
  assert.ok(doneAfter <= claimed + 6, `no chunk computed after the cancel: ${claimed} claimed then, ${doneAfter} done now`);
  assert.equal(await m.storage.get(k.result), null, 'no merge');
  assert.equal((await m.runs.readState(m.storage, 'to-cancel')).status, 'cancelled');
  // Nothing more starts later either (a sweep finds it ended).
  await m.scheduler.sweep(await m.scheduler.systemRequest('DEV'));
  await m.invoke.idle();
  assert.equal((await m.storage.list(k.claimsDir)).length, claimsAfter);
  await heard.stop();
  assert.ok(heard.seen.some(([e, msg]) => e === 'cancelled' && msg.reason === 'test'), 'a cancelled message on the run topic');
  // Cancelling again, or a finished run, answers where it stands; an unknown run is UnknownRun.
  assert.equal((await m.run({ cancel: 'to-cancel' }, context('cancel-2'))).status, 'cancelled');
  await assert.rejects(m.run({ cancel: 'no-such-run' }, context('cancel-3')), (/** @type {Error} */ e) => e.name === 'UnknownRun');
});

test('the watch command cancels a run (--cancel) and exits 4', async () => {
  const watchJs = path.join(__dirname, '..', 'tools', 'watch.js');
  await m.run({ 'request-id': 'watch-cancel', spec: spec({ sample_size: 60000, chunk_size: 200 }) }, context('wc'));
  const { stderr } = await promisify(execFile)(process.execPath, [watchJs, 'watch-cancel', '--cancel', '--reason', 'from watch', '--storage', storageDir, '--redis', pipe.redis.url, '--timeout', '60']).catch((e) => e);
  assert.match(stderr, /cancelled: from watch/);
  await m.invoke.idle();
  const state = await m.runs.readState(m.storage, 'watch-cancel');
  assert.equal(state.status, 'cancelled');
  await assert.rejects(promisify(execFile)(process.execPath, [watchJs, 'watch-cancel', '--storage', storageDir, '--redis', pipe.redis.url, '--timeout', '10']), (/** @type {Error & {code?: number | string}} */ e) => e.code === 4);
});

test('one budget per environment over all runs: three DEV runs compute at most 3 chunks at once', async () => {
  const specs = [spec({ sample_size: 4000, seed: 1 }), spec({ sample_size: 4000, seed: 2 }), spec({ sample_size: 4000, seed: 3 })];
  m.pipeline.resetComputing('DEV');
  const finals = await Promise.all(
    specs.map(async (s, i) => {
      const watcher = watch(`budget-${i}`);
      await m.run({ 'request-id': `budget-${i}`, spec: s }, context(`b-${i}`));
      return watcher;
    }),
  );
  await m.invoke.idle();
  for (const [i, f] of finals.entries()) {
    assert.equal(f.status, 'done', JSON.stringify(f));
    await assertEqualsNative(`budget-${i}`, specs[i]);
  }
  const most = m.pipeline.maxComputing('DEV');
  assert.ok(most <= 3, `at most the budget computing at once over all runs: ${most}`);
  assert.ok(most >= 2, `chunks do compute side by side: ${most}`);
  // No slot is left held once everything ended.
  const redisClient = await bus().commands();
  assert.equal(await redisClient.zCard('tariffsim:budget:DEV'), 0);
});

test('a dead chunk frees its slot when its lease runs out; its run resumes and ends equal to native', async () => {
  const s = spec({ sample_size: 1200, chunk_size: 200 });
  // A holder that died: a slot taken and never released, a claim on chunk 2 that nobody works on.
  const redisClient = await bus().commands();
  for (let i = 0; i < 3; i += 1) await redisClient.zAdd('tariffsim:budget:DEV', { score: Date.now() + 1500, value: `elsewhere:1:dead:${i}` });
  const watcher = watch('dead-holder', 60000);
  await m.run({ 'request-id': 'dead-holder', spec: s }, context('dh'));
  // Nothing can compute until the leases run out; then a sweep (any later invocation, or the dev
  // server's timer) starts the run's chunks.
  await new Promise((resolve) => setTimeout(resolve, 1700));
  await m.scheduler.sweep(await m.scheduler.systemRequest('DEV'));
  const final = await watcher;
  await m.invoke.idle();
  assert.equal(final.status, 'done', JSON.stringify(final));
  await assertEqualsNative('dead-holder', s);
});

test('a full disk fails the run with its reason, on its topic and in its state, even when the failure cannot be stored', async () => {
  const heard = await listenTo('disk-full-chunk');
  const watcher = watch('disk-full-chunk');
  await m.run({ 'request-id': 'disk-full-chunk', spec: spec({ sample_size: 2000, chunk_size: 200 }) }, context('df'));
  const final = await watcher;
  await m.invoke.idle();
  await heard.stop();
  assert.equal(final.status, 'failed', JSON.stringify(final));
  assert.equal(final.failure.error_type, 'StorageFull');
  assert.match(final.failure.reason, /ENOSPC/);
  assert.equal(final.failure.stored, false, 'failed.json could not be written');
  assert.equal(await m.storage.get(m.runs.keys('disk-full-chunk').failed), null);
  const failedMessage = heard.seen.find(([e]) => e === 'run-failed');
  assert.ok(failedMessage, 'run-failed published');
  assert.match(failedMessage[1].reason, /ENOSPC/);
  // Kept in Redis, for any process's readState.
  const kept = JSON.parse(await (await bus().commands()).get('tariffsim:state:disk-full-chunk:failed'));
  assert.equal(kept.error_type, 'StorageFull');
  const state = await m.runs.readState(m.storage, 'disk-full-chunk', { bus: bus() });
  assert.equal(state.status, 'failed');

  // The disk fills at the merge: the run fails, saying so (no retry loop, no run left running).
  const watcher2 = watch('disk-full-merge');
  await m.run({ 'request-id': 'disk-full-merge', spec: spec({ sample_size: 1000, chunk_size: 200 }) }, context('dfm'));
  const final2 = await watcher2;
  await m.invoke.idle();
  assert.equal(final2.status, 'failed', JSON.stringify(final2));
  assert.equal(final2.failure.error_type, 'StorageFull');
  assert.equal(final2.failure.step, 'merge');
  assert.match(final2.failure.reason, /impressions\.csv/);
});

test('a run with no progress for the stall time of work fails as stalled, with its reason', async () => {
  const runId = 'stalled-1';
  const k = m.runs.keys(runId);
  const hourAgo = new Date(Date.now() - 3600_000).toISOString();
  // A run whose filter-population kept being started and kept dying (killed, out of memory) for
  // an hour: its claim was renewed until 10 s ago, by a process of another host, and it never
  // planned.
  await m.storage.put(k.spec, m.runs.json({ spec: spec(), base: '', environment: 'DEV', started_at: hourAgo }));
  await m.storage.put(k.filterLock, m.runs.json({ at: new Date(Date.now() - 10_000).toISOString(), holder: { host: 'elsewhere', pid: 1, boot: 'x' } }));
  await m.storage.put(m.runs.activeKey('DEV', runId), m.runs.json({ run_id: runId, environment: 'DEV', at: hourAgo }));
  const heard = await listenTo(runId);
  const request = await m.scheduler.systemRequest('DEV');
  const found = await m.scheduler.sweep({ ...request, config: { ...request.config, stallMs: 60_000 } });
  assert.equal(found[runId], 'stalled');
  await new Promise((resolve) => setTimeout(resolve, 100));
  await heard.stop();
  const state = await m.runs.readState(m.storage, runId);
  assert.equal(state.status, 'failed');
  assert.equal(state.failure.error_type, 'RunStalled');
  assert.match(state.failure.reason, /no progress for \d+ s of work/);
  assert.ok(heard.seen.some(([e, msg]) => e === 'run-failed' && msg.error_type === 'RunStalled'));
  assert.deepEqual(await m.scheduler.activeRuns(m.storage, 'DEV').then((r) => r.includes(runId)), false, 'no longer active');
});

test('a sample size above the environment limit is a typed error', async () => {
  await assert.rejects(m.run({ 'request-id': 'too-big', spec: spec({ sample_size: 1e15 }) }, context('tb')), (/** @type {Error} */ e) => e.name === 'SampleSizeTooLarge' && /1000000/.test(e.message));
  assert.equal(await m.storage.get(m.runs.keys('too-big').spec), null, 'nothing recorded');
});
