'use strict';
// Races of the fan-out pipeline against real storage (a folder, and S3 on moto's server): the
// take-over of a stale claim or lock has exactly one winner.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { startMoto } = require('./servers');

const ROOT = path.resolve(__dirname, '..', '..');
const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-races-'));
// The storage and data of the lambdas and the server (the configuration is read once).
const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-races-runs-'));
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-races-data-'));
const BUCKET = 'tariffsim-races';
const ROUNDS = 200;

let moto;
/** @type {Record<string, any>} */
const m = {};

before(async () => {
  moto = await startMoto();
  Object.assign(process.env, {
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: 'eu-west-1',
    TARIFFSIM_LOG_LEVEL: 'WARN',
    TARIFFSIM_STORAGE: storageDir,
    TARIFFSIM_DATA_DIR: dataDir,
    TARIFFSIM_SWEEP_MS: '3600000',
  });
  for (const name of ['REDIS_URL', 'AWS_LAMBDA_FUNCTION_NAME', 'TARIFFSIM_MAX_DEPTH']) delete process.env[name];
  for (const f of ['mini_market.json', 'mini_visits.csv', 'mini_scenario.json']) fs.copyFileSync(path.join(ROOT, 'tests', 'fixtures', f), path.join(dataDir, f));
  const { S3Client, CreateBucketCommand } = require('@aws-sdk/client-s3');
  const s3 = new S3Client({ region: 'eu-west-1', endpoint: moto.endpoint, forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET, CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } }));
  s3.destroy();
  const { openStorage } = require('../runtime/storage');
  m.folder = openStorage(folder);
  m.s3 = openStorage(`s3://${BUCKET}/races`, { endpoint: moto.endpoint });
  m.scheduler = require('../runtime/scheduler');
});

after(async () => {
  await require('../runtime/invoke').idle();
  if (moto) await moto.stop();
  for (const dir of [folder, storageDir, dataDir]) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A taker in a process of its own: it claims the key it is sent, with the scheduler's claim, on
 * the storage at `location`, and answers whether it won.
 */
function taker(location, endpoint) {
  const code = `
    const { openStorage } = require(${JSON.stringify(require.resolve('../runtime/storage'))});
    const { claim } = require(${JSON.stringify(require.resolve('../runtime/scheduler'))});
    const st = openStorage(${JSON.stringify(location)}, { endpoint: ${JSON.stringify(endpoint)} });
    process.on('message', async ({ key, lease }) => {
      try {
        process.send({ won: await claim(st, key, lease) });
      } catch (e) {
        process.send({ error: e.name + ': ' + e.message });
      }
    });`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: process.env });
  return {
    claim: (key, lease) =>
      new Promise((resolve, reject) => {
        child.once('message', (/** @type {any} */ r) => (r.error ? reject(new Error(r.error)) : resolve(r.won)));
        child.send({ key, lease });
      }),
    stop: () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill();
      return exited;
    },
  };
}

/** A claim record whose holder stopped renewing it an hour ago. */
const staleRecord = (n) => Buffer.from(JSON.stringify({ at: new Date(Date.now() - 3_600_000).toISOString(), holder: `elsewhere:1:1:${n}` }));

for (const backend of ['folder', 's3']) {
  test(`${backend}: two take-overs of one stale claim at once: exactly one wins, every round`, async () => {
    const st = m[backend];
    const { claim } = m.scheduler;
    const location = backend === 's3' ? `s3://${BUCKET}/races` : folder;
    const takers = [taker(location, moto.endpoint), taker(location, moto.endpoint)];
    const winners = [];
    try {
      for (let round = 0; round < ROUNDS; round += 1) {
        // Rounds alternate: two processes, and two calls of one process.
        const key = `runs/r${round}/claims/0.json`;
        await st.put(key, staleRecord(round));
        const won = await Promise.all(round % 2 === 0 ? takers.map((t) => t.claim(key, 60_000)) : [claim(st, key, 60_000), claim(st, key, 60_000)]);
        winners.push(won.filter(Boolean).length);
        // What is there now is a fresh claim: nobody else takes it.
        assert.equal(await claim(st, key, 60_000), false, `round ${round}: a fresh claim is taken over`);
      }
    } finally {
      await Promise.all(takers.map((t) => t.stop()));
    }
    const counts = winners.reduce((c, n) => ({ ...c, [n]: (c[n] || 0) + 1 }), {});
    assert.deepEqual(counts, { 1: ROUNDS }, `winners per round (count of rounds): ${JSON.stringify(counts)}`);
  });
}

test('folder: a take-over token left by a taker that died does not keep the stale claim for ever', async () => {
  const st = m.folder;
  const { claim } = m.scheduler;
  const key = 'runs/abandoned/merge.lock';
  const stale = staleRecord('abandoned');
  await st.put(key, stale);
  const crypto = require('node:crypto');
  const token = `${st.file(key)}.${crypto.createHash('sha256').update(stale).digest('hex').slice(0, 32)}.takeover.tmp`;
  // A taker that died mid-take-over, 20 s ago, on another host.
  fs.writeFileSync(token, JSON.stringify({ holder: 'elsewhere:1:1:1', at: new Date(Date.now() - 20_000).toISOString() }));
  assert.equal(await claim(st, key, 60_000), true);
  assert.equal(fs.existsSync(token), false, 'the abandoned token is gone');
  // A token being used now (a live taker) makes a second taker give up.
  const stale2 = staleRecord('busy');
  await st.put(key, stale2);
  const token2 = `${st.file(key)}.${crypto.createHash('sha256').update(stale2).digest('hex').slice(0, 32)}.takeover.tmp`;
  fs.writeFileSync(token2, JSON.stringify({ holder: 'elsewhere:1:1:2', at: new Date().toISOString() }));
  assert.equal(await claim(st, key, 60_000), false);
  assert.equal((await st.get(key)).toString(), stale2.toString(), 'the record is left to the live taker');
  assert.deepEqual(await st.list('runs/abandoned'), ['runs/abandoned/merge.lock'], 'tokens are not listed');
});

/** Reads a server-sent event stream to its end: its events, and how long it stayed open. */
async function readEvents(url) {
  const began = Date.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(20_000) });
  const text = await res.text();
  const events = text
    .split('\n\n')
    .filter(Boolean)
    .map((block) => ({ event: /^event: (.*)$/m.exec(block)[1], data: JSON.parse(/^data: (.*)$/m.exec(block)[1]) }));
  return { events, ms: Date.now() - began };
}

test('events of a run that never existed: the stream ends with status unknown after the grace period', async () => {
  const { buildServer } = require('../server/server');
  const { cancelRun, json, keys } = require('../runtime/runs');
  const app = buildServer({ sweep: false, unknownRunMs: 1500 });
  const endpoint = await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const never = await readEvents(`${endpoint}/api/runs/no-such-run/events`);
    assert.deepEqual(never.events.map((e) => [e.event, e.data.status]), [['state', 'unknown'], ['end', 'unknown']]);
    assert.match(never.events[1].data.reason, /no run no-such-run in this storage after 2 s/);
    assert.ok(never.ms >= 1400 && never.ms < 6000, `closed after ${never.ms} ms`);
    // A run that appears within the grace period is followed to its end, however long it takes.
    const late = readEvents(`${endpoint}/api/runs/late-run/events`);
    const { storage, bus } = require('../runtime/pipeline').pipelineOf({ config: require('../runtime/config').config.forEnvironment('DEV') });
    await new Promise((resolve) => setTimeout(resolve, 700));
    await storage.put(keys('late-run').spec, json({ run_id: 'late-run', started_at: new Date().toISOString() }));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await cancelRun(storage, bus, 'late-run', { reason: 'test' });
    const followed = await late;
    assert.deepEqual(followed.events.at(-1).event, 'end');
    assert.equal(followed.events.at(-1).data.status, 'cancelled');
    assert.ok(followed.ms >= 2500, `followed for ${followed.ms} ms`);
  } finally {
    await require('../runtime/invoke').idle();
    await app.close();
  }
});

test('run-simulation refuses a depth whose chain would pass the limit before it records anything', async () => {
  const run = require('../run-simulation').handler;
  const { watchRun } = require('../runtime/runs');
  const spec = { market: 'mini_market.json', scenario: 'mini_scenario.json', visits: 'mini_visits.csv', sample_size: 600, chunk_size: 250, seed: 5, page_size: 5 };
  const context = (id) => ({ awsRequestId: id, invokedFunctionArn: 'arn:aws:lambda:eu-west-1:1:function:tariffsim-run-simulation:DEV' });
  try {
    // The limit is 8: run-simulation at depth d calls filter-population at d + 1, which hands the
    // chunks on at its own depth. At 8 (or more) the chain cannot start: refused, nothing is left.
    for (const depth of [8, 9]) {
      const id = `deep-${depth}`;
      await assert.rejects(run({ 'request-id': id, spec, depth }, context(id)), (/** @type {Error} */ e) => e.name === 'RecursionLimit' && /limit is 8/.test(e.message));
      await require('../runtime/invoke').idle();
      const left = fs.readdirSync(storageDir, { recursive: true }).map(String).filter((f) => f.includes(id));
      assert.deepEqual(left, [], `depth ${depth} left ${left.join(', ')}`);
    }
    // At 7 it runs to the end without a sweep.
    const watcher = watchRun({ storage: require('../runtime/storage').openStorage(storageDir), bus: require('../runtime/pubsub').openBus(null), runId: 'deep-7', pollMs: 200, timeoutMs: 60_000 });
    const started = await run({ 'request-id': 'deep-7', spec, depth: 7 }, context('deep-7'));
    assert.equal(/** @type {{status: string}} */ (started).status, 'started');
    const final = await watcher;
    assert.equal(final.status, 'done', JSON.stringify(final));
  } finally {
    await require('../runtime/invoke').idle();
  }
});
