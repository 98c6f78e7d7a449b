'use strict';
// Runs whose storage refuses writes, in development mode with a real redis-server and folder
// storage (a review of the pipeline): a failure storage could not keep stays active until a sweep
// stores it, and a retry after Redis and the process forgot it answers that end; storage that
// turns read-only mid-run fails the run as StorageFull (a tmpfs remounted read-only when the tests
// run as root, a folder made read-only otherwise); a claim that throws gives its budget slot back;
// the temporaries of killed writers are removed when the run ends; concurrent starts of one id
// take up nothing; a merge taken up again and again without progress stalls the run.

const nodeTest = require('node:test');
const { before, after } = nodeTest;

// No test waits for ever: each has a time limit, and the hooks close every server and bus.
const test = (name, fn) => nodeTest.test(name, { timeout: 120_000 }, fn);
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { devPipeline, until, listen, pipelineModules } = require('./dev-pipeline');

const ROOT = path.resolve(__dirname, '..', '..');
// The run storage: a tmpfs of its own when the tests run as root (it can be remounted read-only:
// root ignores a folder's permissions), else a folder.
const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-storage-faults-'));
const root = typeof process.getuid === 'function' && process.getuid() === 0;
const pipe = devPipeline('storage-faults-unused', {
  TARIFFSIM_STORAGE: storageDir,
  TARIFFSIM_CHUNK_BUDGET: '4',
  TARIFFSIM_RETRY_DELAYS_MS: '5,10',
  TARIFFSIM_LOG_LEVEL: 'ERROR',
  TARIFFSIM_WORKERS: '1',
  TARIFFSIM_LEASE_MS: '1000',
  TARIFFSIM_SWEEP_MS: '200',
  TARIFFSIM_STALL_MS: '60000',
  // Chunks that hold their slot a while before they compute: the storage turns read-only meanwhile.
  TARIFFSIM_DEBUG_HOOKS: '1',
  TARIFFSIM_FAIL_CHUNKS: 'ro-run:slow:1500',
});

/** How this file makes the storage read-only: 'mount' (tmpfs remounted), 'chmod', or null (it cannot). */
let readOnlyBy = null;
let m;

before(async () => {
  if (root) {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', storageDir], { stdio: 'ignore' });
      readOnlyBy = 'mount';
    } catch {
      readOnlyBy = null;
    }
  } else {
    readOnlyBy = 'chmod';
  }
  await pipe.start();
  m = await pipelineModules();
});

after(async () => {
  if (readOnlyBy === 'mount') {
    await writable();
    try {
      execFileSync('umount', ['-l', storageDir], { stdio: 'ignore' });
    } catch {
      // not mounted
    }
  } else if (readOnlyBy === 'chmod') {
    await writable();
  }
  fs.rmSync(storageDir, { recursive: true, force: true });
});

const context = (id = 'ctx') => ({ awsRequestId: id, invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:tariffsim-run-simulation:DEV' });
const spec = (extra = {}) => ({ market: 'mini_market.json', scenario: 'mini_scenario.json', visits: 'mini_visits.csv', sample_size: 400, chunk_size: 200, seed: 4, page_size: 3, ...extra });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const bus = () => m.pubsub.openBus(pipe.redis.url);
/** Every message of a run from now on (dev-pipeline.js listen). */
const listenTo = (runId) => listen(bus(), runId);
const watch = (runId, timeoutMs = 60000) => m.runs.watchRun({ storage: m.storage, bus: bus(), runId, pollMs: 200, timeoutMs });
const runDir = (runId) => path.join(storageDir, 'runs', runId);
const sweep = async () => m.scheduler.sweep(await m.scheduler.systemRequest('DEV'));

/**
 * Writes of the keys `pattern` matches fail as the disk would (`code`: ENOSPC, a full disk, by
 * default), on the storage the handlers use; returns what undoes it.
 */
function refuse(pattern, code = 'ENOSPC') {
  const s = m.storage;
  const originals = { put: s.put, putIfAbsent: s.putIfAbsent };
  for (const method of Object.keys(originals)) {
    s[method] = async (key, ...rest) => {
      if (pattern.test(key)) {
        const cause = Object.assign(new Error(`${code}: refused, write`), { code });
        throw Object.assign(new Error(`storage write of ${key} failed (${code})`, { cause }), { name: 'StorageWriteFailed' });
      }
      return originals[method].call(s, key, ...rest);
    };
  }
  return () => Object.assign(s, originals);
}

/** Makes the run storage read-only (a remount, or its folders' permissions). */
async function readOnly() {
  if (readOnlyBy === 'chmod') {
    execFileSync('chmod', ['-R', 'a-w', storageDir]);
    return;
  }
  // A remount fails (EBUSY) while a file is open for writing: tried again.
  for (let n = 0; ; n += 1) {
    try {
      execFileSync('mount', ['-o', 'remount,ro', storageDir], { stdio: 'ignore' });
      return;
    } catch (e) {
      if (n > 200) throw e;
      await sleep(10);
    }
  }
}

async function writable() {
  if (readOnlyBy === 'chmod') execFileSync('chmod', ['-R', 'u+w', storageDir]);
  else if (readOnlyBy === 'mount') execFileSync('mount', ['-o', 'remount,rw', storageDir], { stdio: 'ignore' });
}

test('a failure storage could not keep leaves the run active until a sweep stores it; a retry answers it', async () => {
  const runId = 'lost-end';
  const heard = await listenTo(runId);
  const active = m.runs.activeKey('DEV', runId);
  // Nearly full: filter-population cannot claim the run, nor can its failure be stored.
  const restore = refuse(/^runs\/lost-end\/(filter\.lock|end\.json|failed\.json)$/);
  try {
    await m.run({ 'request-id': runId, spec: spec() }, context('le'));
    await until(async () => (await m.runs.readState(m.storage, runId, { bus: bus() })).status === 'failed', 'the run failed');
    await m.invoke.idle();
    const state = await m.runs.readState(m.storage, runId, { bus: bus() });
    assert.equal(state.failure.error_type, 'StorageFull', JSON.stringify(state));
    assert.equal(state.failure.stored, false);
    // Only Redis and this process know the end: the run stays in the list, for a sweep to store it
    // (removed now, a restart of both would leave a run "started" that nothing sweeps).
    assert.notEqual(await m.storage.get(active), null, 'the run is still active');
    assert.equal((await sweep())[runId], 'ended');
    assert.notEqual(await m.storage.get(active), null, 'still active while storage refuses its end');
  } finally {
    restore();
  }
  // Storage takes writes again: the sweep stores the end, and the run leaves the list.
  assert.equal((await sweep())[runId], 'ended');
  assert.equal(await m.storage.get(active), null, 'the run left the list');
  const stored = await m.runs.readState(m.storage, runId);
  assert.equal(stored.status, 'failed', 'storage alone says it failed');
  assert.equal(stored.failure.error_type, 'StorageFull');
  assert.equal(stored.failure.stored, undefined);
  // A retry (Lambda, the dev server deliver an Event again) answers the end.
  assert.equal((await m.run({ 'request-id': runId, spec: spec() }, context('le-2'))).status, 'failed');
  await m.invoke.idle();
  await sleep(200);
  await heard.stop();
  assert.equal(heard.count('run-failed'), 1, 'one end said');
  assert.equal(heard.count('run-done'), 0);
  assert.equal(heard.count('resumed'), 0);
});

/** Runs run-simulation once in a fresh process (a server started again), printing its answer. */
function retryInFreshProcess(runId, s) {
  const script = `
    const run = require(${JSON.stringify(path.join(ROOT, 'js', 'run-simulation'))}).handler;
    const done = async (answer) => {
      await require(${JSON.stringify(path.join(ROOT, 'js', 'runtime', 'invoke'))}).idle();
      await require(${JSON.stringify(path.join(ROOT, 'js', 'runtime', 'workers'))}).closeWorkers();
      await require(${JSON.stringify(path.join(ROOT, 'js', 'runtime', 'pubsub'))}).closeBuses();
      process.stdout.write(JSON.stringify(answer));
      process.exit(0);
    };
    run({ 'request-id': ${JSON.stringify(runId)}, spec: ${JSON.stringify(s)} }, { awsRequestId: 'fresh', invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:tariffsim-run-simulation:DEV' })
      .then(done, (e) => done({ error: e.name, message: e.message }));
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('exit', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`the fresh process answered ${out} ${err}`));
      }
    });
  });
}

test('an end whose record storage could not keep (end.json only) is the end after Redis and the process forget it', async () => {
  const runId = 'half-end';
  const heard = await listenTo(runId);
  const restore = refuse(/^runs\/half-end\/(filter\.lock|failed\.json)$/);
  try {
    await m.run({ 'request-id': runId, spec: spec() }, context('he'));
    await until(async () => (await m.runs.readState(m.storage, runId, { bus: bus() })).status === 'failed', 'the run failed');
    await m.invoke.idle();
    assert.ok(fs.existsSync(path.join(runDir(runId), 'end.json')), 'end.json was stored');
    assert.ok(!fs.existsSync(path.join(runDir(runId), 'failed.json')), 'failed.json was not');
    // Redis restarted without persistence, the server started again: storage alone says it failed.
    await (await bus().commands()).flushAll();
    const state = await m.runs.readState(m.storage, runId);
    assert.equal(state.status, 'failed', JSON.stringify(state));
    assert.equal(state.failure.error_type, 'StorageFull');
    // A retry in a fresh process (nothing of the run in its memory) answers the end: no compute.
    const answer = await retryInFreshProcess(runId, spec());
    assert.equal(answer.status, 'failed', JSON.stringify(answer));
    assert.ok(!fs.existsSync(path.join(runDir(runId), 'plan.json')), 'never planned');
  } finally {
    restore();
  }
  // end.json is in storage: the run left the list when it failed.
  assert.equal(await m.storage.get(m.runs.activeKey('DEV', runId)), null);
  await sleep(200);
  await heard.stop();
  assert.equal(heard.count('run-failed'), 1);
  assert.equal(heard.count('run-done'), 0);
  assert.equal(heard.count('resumed'), 0);
});

test('storage that turns read-only mid-run fails the run as StorageFull, once', async (t) => {
  if (readOnlyBy === null) {
    t.skip('the storage cannot be made read-only here (root, and mount refused)');
    return;
  }
  const runId = 'ro-run';
  const k = m.runs.keys(runId);
  const heard = await listenTo(runId);
  const watcher = watch(runId);
  // Five chunks, four at a time, each holding its slot 1.5 s before it computes.
  await m.run({ 'request-id': runId, spec: spec({ sample_size: 1000 }) }, context('ro'));
  await until(async () => (await m.storage.list(k.claimsDir)).length >= 1, 'a chunk claimed');
  await readOnly();
  let final;
  try {
    final = await watcher;
    await m.invoke.idle();
  } finally {
    await writable();
  }
  assert.equal(final.status, 'failed', JSON.stringify(final));
  assert.equal(final.failure.error_type, 'StorageFull', JSON.stringify(final.failure));
  assert.match(final.failure.reason, /EROFS|EACCES/);
  // Writable again: a sweep stores the end the bus kept, and the run leaves the list.
  await sweep();
  assert.equal(await m.storage.get(m.runs.activeKey('DEV', runId)), null);
  assert.equal((await m.runs.readState(m.storage, runId)).status, 'failed');
  await sleep(200);
  await heard.stop();
  assert.equal(heard.count('run-failed'), 1);
  assert.equal(heard.count('run-done'), 0);
});

test('a run started on read-only storage fails as StorageFull', async (t) => {
  if (readOnlyBy === null) {
    t.skip('the storage cannot be made read-only here (root, and mount refused)');
    return;
  }
  const runId = 'ro-start';
  await readOnly();
  try {
    await assert.rejects(m.run({ 'request-id': runId, spec: spec() }, context('rs')), (/** @type {Error} */ e) => e.name === 'StorageFull' && /EROFS|EACCES/.test(e.message));
    const state = await m.runs.readState(m.storage, runId, { bus: bus() });
    assert.equal(state.status, 'failed', JSON.stringify(state));
    assert.equal(state.failure.error_type, 'StorageFull');
  } finally {
    await writable();
  }
});

test('a claim that throws gives its budget slot back', async () => {
  const runId = 'claim-eio';
  const redis = await bus().commands();
  // Every claim of the run's chunks fails for a moment (EIO: not for good).
  const restore = refuse(/^runs\/claim-eio\/claims\//, 'EIO');
  let watcher;
  try {
    await m.run({ 'request-id': runId, spec: spec() }, context('ce'));
    await until(() => fs.existsSync(path.join(runDir(runId), 'plan.json')), 'the run planned');
    await m.invoke.idle();
    await sweep();
    await sweep();
    assert.equal(await redis.zCard('tariffsim:budget:DEV'), 0, 'no slot is held with nothing computing');
    watcher = watch(runId);
  } finally {
    restore();
  }
  await sweep();
  const final = await watcher;
  await m.invoke.idle();
  assert.equal(final.status, 'done', JSON.stringify(final));
});

test('the temporaries killed writers left in done/ and claims/ are removed when the run ends, a live writer\'s never', async () => {
  const runId = 'tmp-left';
  const dir = runDir(runId);
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.once('exit', resolve));
  const dead = child.pid;
  const watcher = watch(runId);
  await m.run({ 'request-id': runId, spec: spec() }, context('tl'));
  const planted = {
    deadDone: path.join(dir, 'done', `000001.json.${dead}.k3x9q.tmp`),
    deadClaim: path.join(dir, 'claims', `000000.json.${dead}.a1b2c3.tmp`),
    live: path.join(dir, 'done', `000000.json.${process.pid}.l1ve.tmp`),
  };
  for (const file of Object.values(planted)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '{"half":');
  }
  const final = await watcher;
  await m.invoke.idle();
  assert.equal(final.status, 'done', JSON.stringify(final));
  assert.ok(!fs.existsSync(planted.deadDone), 'a dead writer\'s done temporary is removed');
  assert.ok(!fs.existsSync(planted.deadClaim), 'a dead writer\'s claim temporary is removed');
  assert.ok(fs.existsSync(planted.live), 'a live writer\'s is kept');
});

test('concurrent starts of one new run take nothing up (no resumed) and it ends once', async () => {
  const runId = 'twin';
  const heard = await listenTo(runId);
  const watcher = watch(runId);
  // The first start's filter-population is slow to claim the run: the second start comes first.
  const s = m.storage;
  const putIfAbsent = s.putIfAbsent;
  s.putIfAbsent = async (key, ...rest) => {
    if (key === 'runs/twin/filter.lock') await sleep(500);
    return putIfAbsent.call(s, key, ...rest);
  };
  let answers;
  try {
    const first = m.run({ 'request-id': runId, spec: spec() }, context('tw-1'));
    await sleep(50);
    answers = await Promise.all([first, m.run({ 'request-id': runId, spec: spec() }, context('tw-2'))]);
  } finally {
    s.putIfAbsent = putIfAbsent;
  }
  assert.deepEqual(answers.map((a) => a.run_id), [runId, runId]);
  const final = await watcher;
  await m.invoke.idle();
  assert.equal(final.status, 'done', JSON.stringify(final));
  await sleep(200);
  await heard.stop();
  assert.equal(heard.count('resumed'), 0, JSON.stringify(heard.seen.map(([e]) => e)));
  assert.equal(heard.count('run-done'), 1);
});

test('a merge taken up again and again without progress runs the stall clock: the run stalls', async () => {
  const runId = 'merge-loop';
  const k = m.runs.keys(runId);
  const put = (key, value) => m.storage.put(key, Buffer.from(`${JSON.stringify(value)}\n`));
  const now = Date.now();
  // Every chunk done, but its impressions are gone: each merge taken up fails at once.
  await put(k.spec, { spec: spec(), base: '', environment: 'DEV', started_at: new Date(now - 120_000).toISOString() });
  await put(k.plan, { chunks: 1, population: 10, sample_size: 200, chunk_size: 200 });
  await put(k.done(0), { index: 0, profiles: 200, impressions: 1, compute_ms: 1, own_ms: 1, summary: {} });
  // 59.5 s of the 60 s stall time worked already.
  await put(k.progress, { at: new Date(now - 59_500).toISOString(), resumed_at: new Date(now - 2000).toISOString() });
  await put(m.runs.activeKey('DEV', runId), { run_id: runId, environment: 'DEV', at: new Date(now - 120_000).toISOString() });
  let found;
  for (let n = 0; n < 12 && found !== 'stalled'; n += 1) {
    found = (await sweep())[runId];
    await sleep(1100);
  }
  const state = await m.runs.readState(m.storage, runId);
  assert.equal(state.status, 'failed', JSON.stringify(state));
  assert.equal(state.failure.error_type, 'RunStalled');
});

test('a run whose last chunk is done is not taken up before that chunk could take its merge: only once its claim is stale', async () => {
  const runId = 'merge-on-its-way';
  const k = m.runs.keys(runId);
  const heard = await listenTo(runId);
  const put = (key, value) => m.storage.put(key, Buffer.from(`${JSON.stringify(value)}\n`));
  const now = Date.now();
  // Both chunks done, no merge.lock yet: the chunk that completed the run (claim 1, renewed just
  // now) is between its done record and the merge's lock.
  await put(k.spec, { spec: spec(), base: '', environment: 'DEV', started_at: new Date(now - 5000).toISOString() });
  await put(k.plan, { chunks: 2, population: 10, sample_size: 400, chunk_size: 200 });
  for (const index of [0, 1]) await put(k.done(index), { index, profiles: 200, impressions: 1, compute_ms: 1, own_ms: 1, summary: {} });
  await put(k.claim(0), { at: new Date(now - 4000).toISOString() });
  await put(k.claim(1), { at: new Date(now).toISOString() });
  await put(m.runs.activeKey('DEV', runId), { run_id: runId, environment: 'DEV', at: new Date(now - 5000).toISOString() });
  try {
    assert.equal((await sweep())[runId], 'merging');
    assert.equal(await m.storage.get(k.mergeLock), null, 'nobody took the merge up');
    // Its claim stale (the lease is 1 s here): the chunk died on the way; a sweep takes the merge up.
    // (Its chunks' impressions are not there: the merge taken up fails, which is not the point.)
    await sleep(1100);
    await sweep();
    await until(() => heard.count('resumed') === 1, 'the merge taken up', 10_000);
  } finally {
    await heard.stop();
    await m.storage.delete(m.runs.activeKey('DEV', runId));
  }
  assert.deepEqual(heard.seen.filter(([e]) => e === 'resumed').map(([, msg]) => msg.step), ['merge']);
});
