'use strict';
// The fan-out pipeline run-simulation -> filter-population -> N x simulate-chunk -> merge, in
// development mode (in-process invoke) with a real redis-server, against the native command's
// output byte for byte; and the faults Lambda's delivery semantics bring.

const nodeTest = require('node:test');
const { before, after } = nodeTest;

// No test waits for ever: each has a time limit (a hang fails, naming the test), and the hooks close
// every server, bus and subscription even when a test failed.
const test = (name, fn) => nodeTest.test(name, { timeout: 180_000 }, fn);
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { startRedis } = require('./servers');

/** @typedef {Error & {code?: number | string, stderr: string}} ExecError an error of execFile: the exit code and what the child wrote */

const ROOT = path.resolve(__dirname, '..', '..');
const NATIVE = path.join(ROOT, 'target', 'release', 'tariffsim');
const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-pipeline-'));
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-data-'));

let redis;
let m; // modules, required once the environment is set

before(async () => {
  redis = await startRedis();
  for (const f of ['mini_market.json', 'mini_visits.csv', 'mini_scenario.json']) {
    fs.copyFileSync(path.join(ROOT, 'tests', 'fixtures', f), path.join(dataDir, f));
  }
  Object.assign(process.env, {
    REDIS_URL: redis.url,
    TARIFFSIM_STORAGE: storageDir,
    TARIFFSIM_DATA_DIR: dataDir,
    TARIFFSIM_CHUNK_BUDGET: '3',
    TARIFFSIM_RETRY_DELAYS_MS: '5,10',
    TARIFFSIM_FAIL_CHUNKS: 'fails-once:2:1,fails-always:1:0,budget:slow:50',
    TARIFFSIM_DEBUG_HOOKS: '1',
    TARIFFSIM_LOG_LEVEL: 'WARN',
    TARIFFSIM_WORKERS: '2',
  });
  delete process.env.AWS_LAMBDA_FUNCTION_NAME;
  m = {
    run: require('../run-simulation').handler,
    chunk: require('../simulate-chunk').handler,
    invoke: require('../runtime/invoke'),
    runs: require('../runtime/runs'),
    pubsub: require('../runtime/pubsub'),
    storage: require('../runtime/storage').openStorage(storageDir),
    pipeline: require('../runtime/chunk-pipeline'),
  };
});

after(async () => {
  if (m) await m.invoke.idle();
  await require('../runtime/workers').closeWorkers();
  await require('../runtime/pubsub').closeBuses();
  if (redis) await redis.stop();
  fs.rmSync(storageDir, { recursive: true, force: true });
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const context = (id = 'ctx') => ({ awsRequestId: id, invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:tariffsim-run-simulation:DEV' });

function spec(extra = {}) {
  return { market: 'mini_market.json', scenario: 'mini_scenario.json', visits: 'mini_visits.csv', sample_size: 2345, chunk_size: 200, seed: 9, page_size: 3, ...extra };
}

/** The native command's output for the same spec. */
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

async function runToEnd(runId, s, bus) {
  const watcher = m.runs.watchRun({ storage: m.storage, bus: bus || m.pubsub.openBus(redis.url), runId, pollMs: 200, timeoutMs: 60000 });
  const started = await m.run({ 'request-id': runId, spec: s }, context());
  assert.equal(started.run_id, runId);
  assert.equal(started.status, 'started');
  const final = await watcher;
  await m.invoke.idle();
  return final;
}

async function outputs(runId) {
  const k = m.runs.keys(runId);
  return { impressions: await m.storage.get(k.impressions), summary: (await m.storage.get(k.summary)).toString('utf8') };
}

test('a fan-out run equals the native simulate output byte for byte', async () => {
  for (const [i, s] of [spec(), spec({ seed: 3, page_size: 10, chunk_size: 1000 }), spec({ filter: { fuels: ['dual_fuel'] }, scenario: null, sample_size: 999, chunk_size: 77 })].entries()) {
    const runId = `equal-${i}`;
    const final = await runToEnd(runId, s);
    assert.equal(final.status, 'done', JSON.stringify(final));
    const want = native(s);
    const got = await outputs(runId);
    assert.ok(got.impressions.equals(want.impressions), `impressions of ${runId} differ from native`);
    assert.equal(got.summary, want.summary);
    assert.equal(final.done, final.chunks);
    assert.equal(final.result.profiles, s.sample_size);
    // What it used: one invocation of each orchestrating lambda, one per chunk, all billed.
    const { usage } = final.result;
    assert.deepEqual(usage.invocations, { 'run-simulation': 1, 'filter-population': 1, 'simulate-chunk': final.chunks });
    assert.ok(usage.billed_ms['simulate-chunk'] >= final.chunks, 'every invocation bills at least 1 ms');
    assert.ok(final.result.cost.total_usd > 0 && final.result.cost.invocations === final.chunks + 2, JSON.stringify(final.result.cost));
  }
});

test('progress and completion are published on the run topics', async () => {
  const bus = m.pubsub.openBus(redis.url);
  const seen = [];
  const unsubscribe = await bus.subscribe(m.pubsub.requestPattern('topics-1'), (msg, channel) => seen.push([channel, msg.event]));
  const final = await runToEnd('topics-1', spec({ sample_size: 1000, chunk_size: 250 }));
  await new Promise((resolve) => setTimeout(resolve, 100));
  await unsubscribe();
  assert.equal(final.status, 'done');
  const chunkDone = seen.filter(([c, e]) => c === 'tariffsim:simulate-chunk:topics-1' && e === 'chunk-done');
  assert.equal(chunkDone.length, 4);
  assert.deepEqual(seen[0], ['tariffsim:run-simulation:topics-1', 'started']);
  assert.ok(seen.some(([c, e]) => c === 'tariffsim:filter-population:topics-1' && e === 'planned'));
  assert.deepEqual(seen.at(-1), ['tariffsim:run-simulation:topics-1', 'run-done']);
});

test('a duplicate chunk delivery never double-counts and the merge runs once', async () => {
  const s = spec({ sample_size: 1200, chunk_size: 300 });
  const final = await runToEnd('dupes', s);
  assert.equal(final.status, 'done');
  const before = await outputs('dupes');
  const result = await m.storage.get(m.runs.keys('dupes').result);
  // Lambda delivers an event again (at least once): the chunk sees it is done and does nothing.
  const again = await m.chunk({ 'request-id': 'dupes', run_id: 'dupes', index: 2 }, context('dup'));
  assert.equal(again.duplicate, true);
  assert.equal(again.merged, false);
  await m.invoke.idle();
  assert.deepEqual(await outputs('dupes'), before);
  assert.ok((await m.storage.get(m.runs.keys('dupes').result)).equals(result), 'result.json written once');
  const state = await m.runs.readState(m.storage, 'dupes');
  assert.equal(state.profiles, 1200, 'profiles counted once');
  // Two deliveries of a fresh run's chunk racing each other.
  const raced = await Promise.all([0, 1].map(() => m.run({ 'request-id': 'dupes', spec: s }, context())));
  assert.equal(raced[0].status, 'done', 'starting a finished run again returns where it stands');
});

test('a chunk that fails once is retried and the run completes', async () => {
  const s = spec({ sample_size: 1500, chunk_size: 300 });
  const final = await runToEnd('fails-once', s);
  assert.equal(final.status, 'done', JSON.stringify(final));
  const attempts = await m.storage.list('runs/fails-once/attempts');
  assert.deepEqual(attempts, ['runs/fails-once/attempts/000002-1']);
  const want = native(s);
  assert.ok((await outputs('fails-once')).impressions.equals(want.impressions));
});

test('a chunk that always fails fails the run, naming the chunk', async () => {
  const final = await runToEnd('fails-always', spec({ sample_size: 1500, chunk_size: 300 }));
  assert.equal(final.status, 'failed');
  assert.equal(final.failure.chunk, 1);
  assert.equal(final.failure.attempts, 3);
  assert.match(final.failure.reason, /InjectedFault/);
  assert.equal(await m.storage.get(m.runs.keys('fails-always').impressions), null, 'no merge after a failure');
});

test('Redis restarted mid-run: no completion is lost', async () => {
  const s = spec({ sample_size: 30000, chunk_size: 500 });
  const bus = m.pubsub.openBus(redis.url);
  let restarted = null;
  const unsubscribe = await bus.subscribe('tariffsim:simulate-chunk:redis-restart', (msg) => {
    if (restarted === null && msg.event === 'chunk-done') restarted = redis.restart(400);
  });
  const final = await runToEnd('redis-restart', s);
  await restarted;
  await unsubscribe();
  assert.equal(final.status, 'done', JSON.stringify(final));
  assert.equal(final.done, 60);
  assert.ok((await outputs('redis-restart')).impressions.equals(native(s).impressions));
});

test('a subscriber that joins late reads where the run stands first', async () => {
  await runToEnd('late-1', spec({ sample_size: 600, chunk_size: 200 }));
  const seen = [];
  const final = await m.runs.watchRun({ storage: m.storage, bus: m.pubsub.openBus(redis.url), runId: 'late-1', onProgress: (st) => seen.push(st.status), timeoutMs: 5000 });
  assert.equal(final.status, 'done');
  assert.deepEqual(seen, ['done']);
  assert.equal(final.result.profiles, 600);
});

test('at most the budget of chunks compute at once', async () => {
  m.pipeline.resetComputing('DEV');
  const final = await runToEnd('budget', spec({ sample_size: 4000, chunk_size: 200 }));
  assert.equal(final.status, 'done');
  assert.ok(m.pipeline.maxComputing('DEV') <= 3, `most computing at once ${m.pipeline.maxComputing('DEV')}`);
  assert.ok(m.pipeline.maxComputing('DEV') >= 2, 'chunks do run side by side');
});

test('a chain of lambdas deeper than the limit stops with RecursionLimit', async () => {
  await assert.rejects(
    m.chunk({ 'request-id': 'deep', run_id: 'deep', index: 0, depth: 100 }, context()),
    (/** @type {Error} */ e) => e.name === 'RecursionLimit',
  );
});

test('bad input is a typed error', async () => {
  await assert.rejects(m.run({ spec: { ...spec(), sample_size: 0 } }, context('bad-1')), (/** @type {Error} */ e) => e.name === 'InvalidSampleSize');
  await assert.rejects(m.run({ spec: { ...spec(), market: '../../etc/passwd' } }, context('bad-2')), (/** @type {Error} */ e) => e.name === 'InvalidReference');
  await assert.rejects(m.run({ spec: spec(), extra: 1 }, context('bad-3')), (/** @type {Error} */ e) => e.name === 'InvalidRequest');
  await assert.rejects(m.run({ 'request-id': 'two words', spec: spec() }, context('bad-4')), (/** @type {Error} */ e) => e.name === 'InvalidRequest');
  await assert.rejects(m.chunk({ run_id: 'no-such-run', index: 0 }, context('bad-5')), (/** @type {Error} */ e) => e.name === 'UnknownRun');
  // An empty population fails the run (asynchronously, in filter-population), with the reason.
  const final = await runToEnd('empty-pop', spec({ filter: { regions: ['P'] } }));
  assert.equal(final.status, 'failed');
  assert.match(final.failure.reason, /EmptyPopulation/);
});

test('the watch command follows a run to its end and exits 0 (1 when it failed)', async () => {
  const { promisify } = require('node:util');
  const execFile = promisify(require('node:child_process').execFile);
  const watch = path.join(__dirname, '..', 'tools', 'watch.js');
  const watching = execFile(process.execPath, [watch, 'watched', '--storage', storageDir, '--redis', redis.url, '--timeout', '60']);
  await runToEnd('watched', spec({ sample_size: 900, chunk_size: 300 }));
  const { stdout, stderr } = await watching;
  assert.equal(JSON.parse(stdout).profiles, 900);
  assert.match(stderr, /100%/);
  await assert.rejects(execFile(process.execPath, [watch, 'fails-always', '--storage', storageDir, '--redis', redis.url]), (/** @type {ExecError} */ e) => e.code === 1 && /failed/.test(e.stderr));
  await assert.rejects(execFile(process.execPath, [watch]), (/** @type {ExecError} */ e) => e.code === 2);
});

test('a run is planned (filter-population\'s computation) in the pool: the thread serving requests keeps running meanwhile', async () => {
  const { planInPool } = require('../runtime/workers');
  const { planPopulation } = require('../runtime/compute');
  const sample = path.join(ROOT, 'data', 'sample');
  const plan = {
    market: fs.readFileSync(path.join(sample, 'market.json')),
    scenario: fs.readFileSync(path.join(sample, 'scenario.json'), 'utf8'),
    visits: fs.readFileSync(path.join(sample, 'visits.csv')),
    spec: { market: 'market.json', scenario: 'scenario.json', visits: 'visits.csv', sample_size: 50000, chunk_size: 5000, seed: 4, page_size: 10, filter: { regions: ['C', 'J'] } },
  };
  // Timers of this thread fire while the worker filters 2.5 MB of visits (tens of milliseconds
  // at least); computed here, in one synchronous call, none could.
  let ticks = 0;
  const timer = setInterval(() => (ticks += 1), 1);
  const pooled = await planInPool(plan, 'DEV');
  clearInterval(timer);
  assert.ok(ticks >= 3, `the event loop ran ${ticks} timer(s) while the run was planned`);
  // The same plan as computed in this thread.
  assert.deepEqual(pooled, planPopulation(plan));
  assert.equal(pooled.chunks, 10);
  assert.ok(pooled.population.count > 0 && Buffer.from(pooled.population.csv).toString('latin1', 0, 9) === 'visit_id,');
  // Refusals keep their name and message across the thread.
  await assert.rejects(planInPool({ ...plan, spec: { ...plan.spec, sample_size: 0 } }, 'DEV'), (/** @type {Error} */ e) => {
    assert.throws(() => planPopulation({ ...plan, spec: { ...plan.spec, sample_size: 0 } }), (/** @type {Error} */ here) => here.name === e.name && here.message === e.message);
    return true;
  });
});

nodeTest.test('background threads run below the thread serving requests: the chunk workers and libuv\'s file pool at nice 10 (Linux)', { timeout: 180_000, skip: process.platform !== 'linux' }, async () => {
  const final = await runToEnd('nice-run', spec({ sample_size: 600 }));
  assert.equal(final.status, 'done', JSON.stringify(final));
  /** nice of each thread of this process, by name (man proc: /proc/<pid>/task/<tid>/stat field 19) */
  const niceByName = {};
  for (const tid of fs.readdirSync('/proc/self/task')) {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    (niceByName[name] ||= []).push(Number(fields[16]));
  }
  assert.ok(niceByName['libuv-worker']?.length > 0 && niceByName['libuv-worker'].every((n) => n === 10), JSON.stringify(niceByName));
  assert.ok(niceByName.WorkerThread?.length > 0 && niceByName.WorkerThread.every((n) => n === 10), JSON.stringify(niceByName));
  // The thread serving requests keeps its priority.
  assert.equal(niceByName[fs.readFileSync('/proc/self/comm', 'utf8').trim()]?.[0] ?? 0, 0);
});
