'use strict';
// What a run that ended failed or cancelled leaves in the run storage, in development mode with a
// real redis-server and folder storage (and S3: moto's server): its chunk objects (chunks/) and
// what a merge cut short left are deleted by a sweep once no chunk of it can still write (no claim
// of it live, nor its merge's lock), never before; what an analyst or the run page reads (spec,
// plan, the end's records, done markers, usage, progress) stays; the run then leaves the sweep's
// list (cleanup/<ENV>/), cleaned once.

const nodeTest = require('node:test');
const { before, after } = nodeTest;

// No test waits for ever: each has a time limit, and the hooks close every server and bus.
const test = (name, fn) => nodeTest.test(name, { timeout: 120_000 }, fn);
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { devPipeline, until, pipelineModules } = require('./dev-pipeline');
const { startMoto } = require('./servers');

const LEASE_MS = 1000;
const pipe = devPipeline('ended-cleanup', {
  // Two chunks at a time, one worker.
  TARIFFSIM_CHUNK_BUDGET: '2',
  TARIFFSIM_RETRY_DELAYS_MS: '5,10',
  TARIFFSIM_LOG_LEVEL: 'ERROR',
  TARIFFSIM_WORKERS: '1',
  // Claims and slots last 1 s without renewal; sweeps come often; no run stalls here.
  TARIFFSIM_LEASE_MS: String(LEASE_MS),
  TARIFFSIM_SWEEP_MS: '200',
  TARIFFSIM_STALL_MS: '60000',
  // cancel-mid: every chunk holds its slot (and renews its claim) 2.5 s before it computes, so the
  // cancel lands while two compute. fail-mid: chunk 2 always fails (the run fails on its third
  // attempt) while the others compute.
  TARIFFSIM_DEBUG_HOOKS: '1',
  TARIFFSIM_FAIL_CHUNKS: 'cancel-mid:slow:2500,fail-mid:2:0,fail-mid:slow:300',
});
const { storageDir } = pipe;
const BUCKET = 'tariffsim-cleanup';

let m;
let moto = null;

before(async () => {
  await pipe.start();
  m = await pipelineModules();
});

after(async () => {
  if (moto) await moto.stop();
});

const context = (id = 'ctx') => ({ awsRequestId: id, invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:tariffsim-run-simulation:DEV' });
const spec = (extra = {}) => ({ market: 'mini_market.json', scenario: 'mini_scenario.json', visits: 'mini_visits.csv', sample_size: 1000, chunk_size: 200, seed: 4, page_size: 3, ...extra });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const bus = () => m.pubsub.openBus(pipe.redis.url);
const watch = (runId, timeoutMs = 60000) => m.runs.watchRun({ storage: m.storage, bus: bus(), runId, pollMs: 200, timeoutMs });
const runDir = (runId) => path.join(storageDir, 'runs', runId);
const sweep = async (request = null) => m.scheduler.sweep(request || (await m.scheduler.systemRequest('DEV')));
/** The runs a sweep of DEV still has to clean. */
const toClean = async (storage = m.storage) => (await storage.list('cleanup/DEV')).map((key) => path.basename(key, '.json'));

/** Sweeps until the run is cleaned (it leaves cleanup/DEV/), failing after `ms`. */
async function sweepUntilCleaned(runId, storage = m.storage, request = null, ms = 20_000) {
  await until(
    async () => {
      await sweep(request);
      return !(await toClean(storage)).includes(runId);
    },
    `run ${runId} cleaned`,
    ms,
  );
}

/** What an analyst and the run page read of an ended run: all still there. */
async function assertRecordsKept(runId, status, storage = m.storage) {
  const k = m.runs.keys(runId);
  for (const key of [k.spec, k.plan, k.end, status === 'failed' ? k.failed : k.cancelled]) {
    assert.notEqual(await storage.get(key), null, `${key} is kept`);
  }
  assert.equal(JSON.parse((await storage.get(k.end)).toString()).status, status);
}

test('a run cancelled while chunks compute keeps its chunk objects until they finished, then a sweep deletes them once', async () => {
  const runId = 'cancel-mid';
  const k = m.runs.keys(runId);
  const chunksDir = path.join(runDir(runId), 'chunks');
  const watcher = watch(runId);
  // Five chunks, two at a time, each 2.5 s in its slot before it computes.
  await m.run({ 'request-id': runId, spec: spec() }, context('cm'));
  // Chunks 0 and 1 done (their objects stored), chunks 2 and 3 in their slots: cancelled then.
  await until(async () => (await m.storage.list(k.doneDir)).length >= 2, 'two chunks done');
  await until(async () => (await m.storage.list(k.claimsDir)).length >= 4, 'chunks 2 and 3 claimed');
  const answer = await m.run({ cancel: runId, reason: 'mid-compute' }, context('cm-cancel'));
  assert.equal(answer.status, 'cancelled');
  const final = await watcher;
  assert.equal(final.status, 'cancelled', JSON.stringify(final));
  assert.deepEqual(await m.scheduler.activeRuns(m.storage, 'DEV'), [], 'the run left the active list at its end');
  const listed = await toClean();

  // A lease after the cancel, chunks 2 and 3 still wait in their slots (their claims renewed): a
  // sweep deletes nothing (they are yet to store their objects).
  await sleep(LEASE_MS + 200);
  const whileComputing = (await sweep())[runId];
  assert.ok((await m.storage.list(`${k.base}/chunks`)).length >= 2, 'the chunk objects are kept while chunks compute');
  const stillListed = await toClean();

  // They finish and store their outputs (docs/pipeline.md, Cancel)...
  await until(async () => (await m.storage.list(k.doneDir)).length === 4, 'chunks 2 and 3 done', 30_000);
  await m.invoke.idle();
  assert.equal((await m.storage.list(`${k.base}/chunks`)).length, 4, 'chunks 0 to 3 stored their objects');
  // ...and once their claims are stale, a sweep deletes the chunk objects; the run leaves the list.
  await sweepUntilCleaned(runId);
  assert.deepEqual(await m.storage.list(`${k.base}/chunks`), [], 'no chunk object is left');
  assert.ok(!fs.existsSync(chunksDir), 'the chunks folder is gone');
  await assertRecordsKept(runId, 'cancelled');
  assert.equal((await m.storage.list(k.doneDir)).length, 4, 'the done markers are kept');
  assert.ok((await m.storage.list(`${k.base}/usage`)).length > 0, 'usage is kept');
  for (const key of [k.impressions, k.summary, k.result]) assert.equal(await m.storage.get(key), null, `no ${key}`);
  const state = await m.runs.readState(m.storage, runId, { bus: bus() });
  assert.equal(state.status, 'cancelled');
  assert.equal(state.cancellation.reason, 'mid-compute');
  assert.equal(state.done, 4);
  // It was on the sweep's list to clean from its end until then, and the sweep waited.
  assert.deepEqual(listed, [runId], 'the run was on the sweep\'s list to clean');
  assert.equal(whileComputing, 'cleaning');
  assert.deepEqual(stillListed, [runId]);
  assert.deepEqual(await toClean(), []);

  // Cleaned once: later sweeps do not look at the run again (nor list its chunks).
  const list = m.storage.list;
  const prefixes = [];
  m.storage.list = async (prefix) => {
    prefixes.push(prefix);
    return list.call(m.storage, prefix);
  };
  try {
    const found = await sweep();
    assert.equal(found[runId], undefined, JSON.stringify(found));
  } finally {
    m.storage.list = list;
  }
  assert.deepEqual(prefixes.filter((prefix) => prefix.startsWith(k.base)), [], `the run is not listed again: ${prefixes.join(', ')}`);
});

test('a run that failed while chunks computed has its chunk objects and half-written merge outputs deleted, its records kept', async () => {
  const runId = 'fail-mid';
  const k = m.runs.keys(runId);
  const watcher = watch(runId);
  await m.run({ 'request-id': runId, spec: spec() }, context('fm'));
  const final = await watcher;
  assert.equal(final.status, 'failed', JSON.stringify(final));
  assert.equal(final.failure.error_type, 'InjectedFault');
  assert.equal(final.failure.chunk, 2);
  await m.invoke.idle();
  assert.ok((await m.storage.list(`${k.base}/chunks`)).length >= 1, 'chunks that computed stored their objects');
  // What a merge cut short by the failure would leave: its outputs put in place, no result.
  await m.storage.put(k.impressions, Buffer.from('half,a,merge\n'));
  await m.storage.put(k.summary, Buffer.from('{}\n'));
  assert.deepEqual(await m.scheduler.activeRuns(m.storage, 'DEV'), [], 'the run left the active list at its end');
  const listed = await toClean();

  await sweepUntilCleaned(runId);
  assert.deepEqual(await m.storage.list(`${k.base}/chunks`), [], 'no chunk object is left');
  assert.ok(!fs.existsSync(path.join(runDir(runId), 'chunks')), 'the chunks folder is gone');
  assert.equal(await m.storage.get(k.impressions), null, 'the half-written impressions are deleted');
  assert.equal(await m.storage.get(k.summary), null, 'the half-written summary is deleted');
  await assertRecordsKept(runId, 'failed');
  assert.ok((await m.storage.list(k.doneDir)).length >= 1, 'the done markers are kept');
  assert.ok((await m.storage.list(k.attemptsDir)).length >= 3, 'the failed attempts are kept');
  const state = await m.runs.readState(m.storage, runId, { bus: bus() });
  assert.equal(state.status, 'failed');
  assert.equal(state.failure.chunk, 2);
  assert.ok(listed.includes(runId), 'the run was on the sweep\'s list to clean');
  assert.ok(!(await toClean()).includes(runId));
});

test('a done run is never on the list and keeps what it keeps', async () => {
  const runId = 'done-kept';
  const k = m.runs.keys(runId);
  const watcher = watch(runId);
  await m.run({ 'request-id': runId, spec: spec({ sample_size: 400 }) }, context('dk'));
  const final = await watcher;
  await m.invoke.idle();
  assert.equal(final.status, 'done', JSON.stringify(final));
  assert.ok(!(await toClean()).includes(runId));
  await sweep();
  for (const key of [k.spec, k.plan, k.end, k.impressions, k.summary, k.result]) assert.notEqual(await m.storage.get(key), null, `${key} is kept`);
  assert.deepEqual(await m.storage.list(`${k.base}/chunks`), [], 'its merge deleted its chunk objects');
});

test('on S3: an ended run left active (its process died) is cleaned once no claim of it is live, nor its merge lock', async () => {
  moto = await startMoto();
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'eu-west-1' });
  const { S3Client, CreateBucketCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand } = require('@aws-sdk/client-s3');
  const s3 = new S3Client({ region: 'eu-west-1', endpoint: moto.endpoint, forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET, CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } }));
  const dev = await m.scheduler.systemRequest('DEV');
  const request = { ...dev, config: { ...dev.config, storage: `s3://${BUCKET}/dev`, s3Endpoint: moto.endpoint } };
  const storage = m.pipeline.pipelineOf(request).storage;
  const put = (key, value) => storage.put(key, m.runs.json(value));
  const runId = 's3-cancelled';
  const k = m.runs.keys(runId);
  const now = Date.now();
  const ago = (ms) => new Date(now - ms).toISOString();
  // Cancelled 10 s ago; its process died before the run left the active list.
  await put(k.spec, { spec: spec(), base: '', environment: 'DEV', started_at: ago(60_000) });
  await put(k.plan, { chunks: 3, population: 10, sample_size: 600, chunk_size: 200 });
  await put(k.end, { status: 'cancelled', at: ago(10_000), record: { reason: 'gone', environment: 'DEV' } });
  await put(k.cancelled, { reason: 'gone', environment: 'DEV', at: ago(10_000) });
  await put(k.progress, { at: ago(20_000) });
  await put(k.done(0), { index: 0, profiles: 200, impressions: 1, compute_ms: 1, own_ms: 1, summary: {} });
  for (const i of [0, 1, 2]) await storage.put(k.chunkCsv(i), Buffer.from(`chunk ${i}\n`));
  await put(k.claim(0), { at: ago(20_000), holder: 'elsewhere:1:x:1' });
  // Chunk 2 still computes on another host (its claim renewed just now).
  await put(k.claim(2), { at: new Date().toISOString(), holder: 'elsewhere:2:x:1' });
  await put(m.runs.activeKey('DEV', runId), { run_id: runId, environment: 'DEV', at: ago(60_000) });
  // A merge that died mid-upload (another host): an unfinished multipart upload of impressions.csv.
  await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: `dev/${k.impressions}` }));
  const uploads = async () => ((await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `dev/${k.base}/` }))).Uploads || []).length;
  assert.equal(await uploads(), 1);
  try {
    // The sweep moves the ended run from the active list to the list to clean, and waits.
    await sweep(request);
    assert.deepEqual(await m.scheduler.activeRuns(storage, 'DEV'), []);
    const listed = await toClean(storage);
    const whileClaimed = (await sweep(request))[runId];
    assert.equal((await storage.list(`${k.base}/chunks`)).length, 3, 'kept while chunk 2 may still write');
    // Chunk 2 stored its object and stopped; its claim goes stale. A live merge lock keeps it too.
    await put(k.claim(2), { at: ago(5000), holder: 'elsewhere:2:x:1' });
    await put(k.mergeLock, { at: new Date().toISOString(), holder: 'elsewhere:3:x:1' });
    const whileLocked = (await sweep(request))[runId];
    assert.equal((await storage.list(`${k.base}/chunks`)).length, 3, 'kept while its merge lock is live');
    await put(k.mergeLock, { at: ago(20 * 60_000), holder: 'elsewhere:3:x:1' });
    const found = (await sweep(request))[runId];
    assert.deepEqual(await storage.list(`${k.base}/chunks`), [], 'no chunk object is left');
    assert.equal(await uploads(), 0, 'the unfinished upload of impressions.csv is aborted');
    await assertRecordsKept(runId, 'cancelled', storage);
    assert.notEqual(await storage.get(k.done(0)), null);
    assert.notEqual(await storage.get(k.progress), null);
    assert.deepEqual([listed, whileClaimed, whileLocked, found], [[runId], 'cleaning', 'cleaning', 'cleaned']);
    assert.deepEqual(await toClean(storage), []);
    assert.equal((await sweep(request))[runId], undefined);
  } finally {
    s3.destroy();
  }
});
